-- LIKE_DAY, step 4, for the missing half hours of runs that chose it. Per series and day:
--   profile(slot) = mean kWh of the like days' actual readings at that local half hour (the
--                   same weekday of the previous `weeks` weeks; the two autumn 01:00 half
--                   hours share a slot)
--   like_mean     = mean kWh of every actual reading of those like days
--   recent_mean   = vee_recent (like_recent.sql)
--   scale         = recent_mean / like_mean within [scale_min, scale_max]; 1 when unknown/0
--   estimate      = round(profile(slot) × scale, decimals); no like-day reading: no estimate
WITH profile AS (
    SELECT meter_id, channel, local_date, slot, sum(kwh) / sum(n) AS kwh,
           array_agg(DISTINCT like_date ORDER BY like_date) AS like_days
      FROM vee_like GROUP BY meter_id, channel, local_date, slot
), scaled AS (
    SELECT l.meter_id, l.channel, l.local_date, l.like_mean, c.recent_mean,
           CASE WHEN l.like_mean > 0 AND c.recent_mean IS NOT NULL
                THEN least(greatest(c.recent_mean / l.like_mean, %(scale_min)s::numeric),
                           %(scale_max)s::numeric)
                ELSE 1 END AS scale
      FROM (SELECT meter_id, channel, local_date, sum(kwh) / sum(n) AS like_mean
              FROM vee_like GROUP BY meter_id, channel, local_date) AS l
      LEFT JOIN vee_recent c USING (meter_id, channel, local_date)
)
INSERT INTO vee_est (meter_id, channel, interval_start, local_date, kwh, method, inputs)
SELECT m.meter_id, m.channel, m.interval_start, m.local_date,
       round(p.kwh * s.scale, %(decimals)s), g.method,
       jsonb_build_object('like_days', p.like_days, 'profile_kwh', round(p.kwh, 6),
                          'like_mean', round(s.like_mean, 6),
                          'recent_mean', round(s.recent_mean, 6),
                          'scale', round(s.scale, 6), 'gap_intervals', g.gap_intervals)
  FROM vee_missing m
  JOIN vee_gap g USING (meter_id, channel, grp)
  JOIN profile p USING (meter_id, channel, local_date, slot)
  JOIN scaled s USING (meter_id, channel, local_date)
 WHERE g.method = %(like_day)s;

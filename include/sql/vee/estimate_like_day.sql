-- LIKE_DAY, step 4, for the missing half hours of runs that chose it. Per series and day:
--   profile(slot) = mean kWh of the like days' actual readings at that local half hour (the
--                   same weekday of the previous `weeks` weeks; the two autumn 01:00 half
--                   hours share a slot)
--   scale         = the day's own level against its profile (like_level.sql): the mean of
--                   its actual readings / the mean of the profile at the same half hours,
--                   within [scale_min, scale_max]; 1 when the day has fewer than min_known
--                   actual readings (a whole missing day: the plain profile) or either is 0
--   estimate      = round(profile(slot) × scale, decimals); no like-day reading: no estimate
WITH profile AS (
    SELECT meter_id, channel, local_date, slot, sum(kwh) / sum(n) AS kwh,
           array_agg(DISTINCT like_date ORDER BY like_date) AS like_days
      FROM vee_like GROUP BY meter_id, channel, local_date, slot
), scaled AS (
    SELECT meter_id, channel, local_date, like_mean, day_mean, known,
           CASE WHEN known >= %(min_known)s AND like_mean > 0 AND day_mean > 0
                THEN least(greatest(day_mean / like_mean, %(scale_min)s::numeric),
                           %(scale_max)s::numeric)
                ELSE 1 END AS scale
      FROM vee_level
)
INSERT INTO vee_est (meter_id, channel, interval_start, local_date, kwh, method, inputs)
SELECT m.meter_id, m.channel, m.interval_start, m.local_date,
       round(p.kwh * coalesce(s.scale, 1), %(decimals)s), g.method,
       jsonb_build_object('like_days', p.like_days, 'profile_kwh', round(p.kwh, 6),
                          'day_mean', round(s.day_mean, 6),
                          'like_mean', round(s.like_mean, 6), 'known', coalesce(s.known, 0),
                          'scale', round(coalesce(s.scale, 1), 6),
                          'gap_intervals', g.gap_intervals)
  FROM vee_missing m
  JOIN vee_gap g USING (meter_id, channel, grp)
  JOIN profile p USING (meter_id, channel, local_date, slot)
  LEFT JOIN scaled s USING (meter_id, channel, local_date)
 WHERE g.method = %(like_day)s;

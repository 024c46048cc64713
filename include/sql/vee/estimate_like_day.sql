-- LIKE_DAY for the missing half hours of runs that chose it. Per series and local day:
--   profile(slot) = mean kWh (quality A/S/F) at that local half hour on the same weekday of
--                   the previous `weeks` weeks (the two autumn 01:00 half hours share a slot)
--   like_mean     = mean kWh of every such reading of those like days
--   recent_mean   = mean kWh (A/S/F) over the recent_days days before the day and the day
--   scale         = recent_mean / like_mean within [scale_min, scale_max]; 1 when unknown/0
--   estimate      = round(profile(slot) × scale, decimals); no like-day reading: no estimate
-- like_from/recent_from bound the scans so only the partitions concerned are read.
WITH need AS (
    SELECT DISTINCT m.meter_id, m.channel, m.local_date
      FROM vee_missing m JOIN vee_gap g USING (meter_id, channel, grp)
     WHERE g.method = %(like_day)s
), like_read AS (
    SELECT n.meter_id, n.channel, n.local_date, n.local_date - 7 * w AS like_date,
           (extract(hour FROM r.interval_start AT TIME ZONE %(tz)s) * 2
            + extract(minute FROM r.interval_start AT TIME ZONE %(tz)s)::integer / 30
           )::smallint AS slot,
           r.kwh
      FROM need n
     CROSS JOIN generate_series(1, %(weeks)s) AS w
      JOIN {table} r
        ON r.meter_id = n.meter_id AND r.channel = n.channel
       AND r.interval_start >= ((n.local_date - 7 * w)::timestamp AT TIME ZONE %(tz)s)
       AND r.interval_start < ((n.local_date - 7 * w + 1)::timestamp AT TIME ZONE %(tz)s)
     WHERE r.interval_start >= %(like_from)s AND r.interval_start < %(like_to)s
       AND r.quality <> 'E'
), profile AS (
    SELECT meter_id, channel, local_date, slot, avg(kwh) AS kwh,
           array_agg(DISTINCT like_date ORDER BY like_date) AS like_days
      FROM like_read GROUP BY meter_id, channel, local_date, slot
), like_level AS (
    SELECT meter_id, channel, local_date, avg(kwh) AS like_mean
      FROM like_read GROUP BY meter_id, channel, local_date
), recent AS (
    SELECT n.meter_id, n.channel, n.local_date, avg(r.kwh) AS recent_mean
      FROM need n
      JOIN {table} r
        ON r.meter_id = n.meter_id AND r.channel = n.channel
       AND r.interval_start >= ((n.local_date - %(recent_days)s)::timestamp AT TIME ZONE %(tz)s)
       AND r.interval_start < ((n.local_date + 1)::timestamp AT TIME ZONE %(tz)s)
     WHERE r.interval_start >= %(recent_from)s AND r.interval_start < %(utc_to)s
       AND r.quality <> 'E'
     GROUP BY n.meter_id, n.channel, n.local_date
), scaled AS (
    SELECT l.meter_id, l.channel, l.local_date, l.like_mean, c.recent_mean,
           CASE WHEN l.like_mean > 0 AND c.recent_mean IS NOT NULL
                THEN least(greatest(c.recent_mean / l.like_mean, %(scale_min)s::numeric),
                           %(scale_max)s::numeric)
                ELSE 1 END AS scale
      FROM like_level l
      LEFT JOIN recent c USING (meter_id, channel, local_date)
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

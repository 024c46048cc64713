-- LIKE_DAY, step 2, once per week w = 1..weeks: the actual readings (A/S/F) of the day 7w days
-- before each needed day, summed per local half hour. [like_lo, like_hi): the UTC bounds of
-- the processed days moved back w weeks (one range scan, hash-joined to vee_need).
INSERT INTO vee_like (meter_id, channel, local_date, like_date, slot, kwh, n)
SELECT n.meter_id, n.channel, n.local_date, n.local_date - 7 * %(w)s,
       (extract(hour FROM r.interval_start AT TIME ZONE %(tz)s) * 2
        + extract(minute FROM r.interval_start AT TIME ZONE %(tz)s)::integer / 30)::smallint,
       sum(r.kwh), count(*)
  FROM {table} r
  JOIN vee_need n
    ON n.meter_id = r.meter_id AND n.channel = r.channel
   AND n.local_date = (r.interval_start AT TIME ZONE %(tz)s)::date + 7 * %(w)s
 WHERE r.interval_start >= %(like_lo)s AND r.interval_start < %(like_hi)s
   AND r.quality <> 'E'
 GROUP BY 1, 2, 3, 4, 5;

-- LIKE_DAY, step 3: each needed series-day's own level against its profile, like for like:
-- over the day's actual readings (A/S/F) at half hours that have a profile, their mean
-- (day_mean), the mean of the profile at those same half hours (like_mean) and their count.
CREATE TEMP TABLE vee_level ON COMMIT DROP AS
SELECT n.meter_id, n.channel, n.local_date, avg(r.kwh) AS day_mean, avg(p.kwh) AS like_mean,
       count(*) AS known
  FROM {table} r
  JOIN vee_need n
    ON n.meter_id = r.meter_id AND n.channel = r.channel
   AND (r.interval_start AT TIME ZONE %(tz)s)::date = n.local_date
  JOIN (SELECT meter_id, channel, local_date, slot, sum(kwh) / sum(n) AS kwh
          FROM vee_like GROUP BY meter_id, channel, local_date, slot) AS p
    ON p.meter_id = n.meter_id AND p.channel = n.channel AND p.local_date = n.local_date
   AND p.slot = (extract(hour FROM r.interval_start AT TIME ZONE %(tz)s) * 2
                 + extract(minute FROM r.interval_start AT TIME ZONE %(tz)s)::integer / 30)
 WHERE r.interval_start >= %(utc_from)s AND r.interval_start < %(utc_to)s
   AND r.quality <> 'E'
 GROUP BY n.meter_id, n.channel, n.local_date;

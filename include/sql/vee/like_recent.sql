-- LIKE_DAY, step 3: each needed series-day's recent level, the mean of its actual readings
-- (A/S/F) over the recent_days local days before it and the day itself.
CREATE TEMP TABLE vee_recent ON COMMIT DROP AS
SELECT n.meter_id, n.channel, n.local_date, avg(r.kwh) AS recent_mean
  FROM {table} r
  JOIN vee_need n
    ON n.meter_id = r.meter_id AND n.channel = r.channel
   AND (r.interval_start AT TIME ZONE %(tz)s)::date
       BETWEEN n.local_date - %(recent_days)s AND n.local_date
 WHERE r.interval_start >= %(recent_lo)s AND r.interval_start < %(utc_to)s
   AND r.quality <> 'E'
 GROUP BY n.meter_id, n.channel, n.local_date;

-- Each judged series' own history: mean, standard deviation and count of its actual readings
-- (A/S/F) over [hist_from, utc_from), the history_days before the first processed day.
CREATE TEMP TABLE vee_hist ON COMMIT DROP AS
SELECT r.meter_id, r.channel, avg(r.kwh) AS mean, stddev_pop(r.kwh) AS sd, count(*) AS n
  FROM {table} r
  JOIN vee_series s USING (meter_id, channel)
 WHERE r.interval_start >= %(hist_from)s AND r.interval_start < %(utc_from)s
   AND r.quality <> 'E'
 GROUP BY r.meter_id, r.channel;

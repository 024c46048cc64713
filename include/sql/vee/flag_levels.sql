-- SPIKE, HIGH and LOW on the actual readings (A/S/F) of the processed days, judged against the
-- series' history (vee_hist, at least min_history readings):
--   SPIKE  kwh >= spike_min, kwh > spike_level × mean, and kwh > spike_neighbour × the mean of
--          its neighbours (the readings at -30 and +30 minutes; one alone when the other is
--          missing; none: not judged)
--   HIGH   kwh > mean + high_sigmas × sd;  LOW  kwh < mean - low_sigmas × sd (that bound > 0)
WITH day AS (
    SELECT r.meter_id, r.channel, r.interval_start, r.kwh, r.quality,
           CASE WHEN lag(r.interval_start) OVER w = r.interval_start - interval '30 minutes'
                THEN lag(r.kwh) OVER w END AS before_kwh,
           CASE WHEN lead(r.interval_start) OVER w = r.interval_start + interval '30 minutes'
                THEN lead(r.kwh) OVER w END AS after_kwh
      FROM {table} r
      JOIN vee_series s USING (meter_id, channel)
     WHERE r.interval_start >= %(utc_from)s - interval '30 minutes'
       AND r.interval_start < %(utc_to)s + interval '30 minutes'
    WINDOW w AS (PARTITION BY r.meter_id, r.channel ORDER BY r.interval_start)
), judged AS (
    SELECT d.*, t.local_date, h.mean, h.sd,
           (coalesce(d.before_kwh, d.after_kwh) + coalesce(d.after_kwh, d.before_kwh)) / 2
               AS neighbours
      FROM day d
      JOIN vee_slot t USING (interval_start)
      JOIN vee_hist h USING (meter_id, channel)
     WHERE d.quality <> 'E' AND h.n >= %(min_history)s
)
INSERT INTO audit.vee_flag (meter_id, channel, interval_start, rule, source, local_date, kwh,
                            detail, run_id)
SELECT meter_id, channel, interval_start, %(spike)s, %(source)s, local_date, kwh,
       jsonb_build_object('neighbour_mean', neighbours, 'level', round(mean, 6),
                          'neighbour_factor', %(spike_neighbour)s,
                          'level_factor', %(spike_level)s),
       %(run_id)s
  FROM judged
 WHERE kwh >= %(spike_min)s AND kwh > %(spike_level)s * mean
   AND kwh > %(spike_neighbour)s * neighbours
UNION ALL
SELECT meter_id, channel, interval_start, %(high)s, %(source)s, local_date, kwh,
       jsonb_build_object('mean', round(mean, 6), 'sd', round(sd, 6),
                          'bound', round(mean + %(high_sigmas)s * sd, 6)),
       %(run_id)s
  FROM judged
 WHERE kwh > mean + %(high_sigmas)s * sd
UNION ALL
SELECT meter_id, channel, interval_start, %(low)s, %(source)s, local_date, kwh,
       jsonb_build_object('mean', round(mean, 6), 'sd', round(sd, 6),
                          'bound', round(mean - %(low_sigmas)s * sd, 6)),
       %(run_id)s
  FROM judged
 WHERE mean - %(low_sigmas)s * sd > 0 AND kwh < mean - %(low_sigmas)s * sd
ON CONFLICT DO NOTHING;

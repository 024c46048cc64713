-- FLAT and ZERO: a run of the same value over consecutive half hours, at least flat_n (a
-- non-zero value) or zero_n (zero; import channels only) long. Readings are read run_n - 1
-- half hours either side of the processed days so runs crossing their edges count whole; only
-- the readings inside the days are flagged. grp is equal along a run of one value.
WITH near AS (
    SELECT r.meter_id, r.channel, s.kind, r.interval_start, r.kwh,
           r.interval_start - interval '30 minutes' * row_number() OVER (
               PARTITION BY r.meter_id, r.channel, r.kwh ORDER BY r.interval_start) AS grp
      FROM {table} r
      JOIN vee_series s USING (meter_id, channel)
     WHERE r.interval_start >= %(utc_from)s - interval '30 minutes' * (%(run_n)s - 1)
       AND r.interval_start < %(utc_to)s + interval '30 minutes' * (%(run_n)s - 1)
       AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)
), runs AS (
    SELECT meter_id, channel, kwh, grp, count(*) AS n, min(interval_start) AS first,
           max(interval_start) AS last, min(kind) AS kind
      FROM near GROUP BY meter_id, channel, kwh, grp
), long AS (
    SELECT *, CASE WHEN kwh = 0 THEN %(zero)s ELSE %(flat)s END AS code
      FROM runs
     WHERE (kwh <> 0 AND n >= %(flat_n)s) OR (kwh = 0 AND kind = 'import' AND n >= %(zero_n)s)
)
INSERT INTO audit.vee_flag (meter_id, channel, interval_start, rule, source, local_date, kwh,
                            detail, run_id)
SELECT l.meter_id, l.channel, t.interval_start, l.code, %(source)s, t.local_date, l.kwh,
       jsonb_build_object('run_first', l.first, 'run_last', l.last, 'run_intervals', l.n),
       %(run_id)s
  FROM long l
  JOIN vee_slot t ON t.interval_start BETWEEN l.first AND l.last
 ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING;

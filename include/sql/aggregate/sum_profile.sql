-- sum_profile from sum_read: the per-half-hour sums of all meters per source, local day and
-- half hour of the day (the two October 01:00 half hours share a slot), for the (source, local
-- day) pairs of sum_days only: kwh and readings of import channels, export_kwh and
-- export_readings of export channels (meter.channel_kind, V015), and all_readings of every
-- channel, non-energy ones too (mart.day_sum.readings). A few rows per half hour: the kinds
-- are judged here, not per reading.
CREATE TEMP TABLE sum_profile ON COMMIT DROP AS
SELECT r.source, s.local_date, s.slot,
       coalesce(sum(r.kwh) FILTER (WHERE k.kind = 'import'), 0)         AS kwh,
       coalesce(sum(r.n) FILTER (WHERE k.kind = 'import'), 0)::integer   AS readings,
       coalesce(sum(r.kwh) FILTER (WHERE k.kind = 'export'), 0)         AS export_kwh,
       coalesce(sum(r.n) FILTER (WHERE k.kind = 'export'), 0)::integer   AS export_readings,
       sum(r.n)::integer                                                 AS all_readings
  FROM sum_read r
 CROSS JOIN LATERAL (SELECT meter.channel_kind(r.channel) AS kind) k
  JOIN sum_slot s ON s.utc = r.interval_start
  JOIN sum_days d ON d.source = r.source AND d.local_date = s.local_date
 GROUP BY r.source, s.local_date, s.slot
 ORDER BY r.source, s.local_date, s.slot

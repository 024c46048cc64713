-- agg_stage from agg_read: the per-meter runs summed per meter, local day and interval class
-- (a day's off-peak is two runs), and the per-half-hour sums per source, local day and half
-- hour of the day (the two October 01:00 half hours share a slot). Only the (source, local day)
-- pairs of agg_days: a source's UTC bounds may span days between them that were not asked for.
INSERT INTO agg_stage (source, meter_id, local_date, class, slot, kwh, n)
SELECT r.source, r.meter_id, s.local_date, s.class, NULL, sum(r.kwh), sum(r.n)
  FROM agg_read r
  JOIN (SELECT DISTINCT seg, local_date, class FROM agg_slot) s ON s.seg = r.seg
  JOIN agg_days d ON d.source = r.source AND d.local_date = s.local_date
 WHERE r.meter_id IS NOT NULL
 GROUP BY r.source, r.meter_id, s.local_date, s.class
UNION ALL
SELECT r.source, NULL, s.local_date, NULL, s.slot, sum(r.kwh), sum(r.n)
  FROM agg_read r
  JOIN agg_slot s ON s.utc = r.interval_start
  JOIN agg_days d ON d.source = r.source AND d.local_date = s.local_date
 WHERE r.meter_id IS NULL
 GROUP BY r.source, s.local_date, s.slot

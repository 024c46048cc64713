-- agg_profile from agg_read: the per-half-hour sums of all meters per source, local day and
-- half hour of the day (the two October 01:00 half hours share a slot), for the (source, local
-- day) pairs of agg_days only.
INSERT INTO agg_profile (source, local_date, slot, kwh, n)
SELECT r.source, s.local_date, s.slot, sum(r.kwh), sum(r.n)
  FROM agg_read r
  JOIN agg_slot s ON s.utc = r.interval_start
  JOIN agg_days d ON d.source = r.source AND d.local_date = s.local_date
 GROUP BY r.source, s.local_date, s.slot

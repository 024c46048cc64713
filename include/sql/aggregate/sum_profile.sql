-- sum_profile from sum_read: the per-half-hour sums of all meters per source, local day and
-- half hour of the day (the two October 01:00 half hours share a slot), for the (source, local
-- day) pairs of sum_days only.
CREATE TEMP TABLE sum_profile ON COMMIT DROP AS
SELECT r.source, s.local_date, s.slot, sum(r.kwh) AS kwh, sum(r.n)::integer AS readings
  FROM sum_read r
  JOIN sum_slot s ON s.utc = r.interval_start
  JOIN sum_days d ON d.source = r.source AND d.local_date = s.local_date
 GROUP BY r.source, s.local_date, s.slot
 ORDER BY r.source, s.local_date, s.slot

-- Readings of the recomputed days whose interval_start is not a half hour of sum_slot (off the
-- 30-minute grid, which the quality gate should have rejected): per source, the count and the
-- first such interval_start. resum raises rather than leave them out of the marts.
SELECT r.source, sum(r.n)::integer AS readings, min(r.interval_start) AS first_start
  FROM sum_read r
 WHERE NOT EXISTS (SELECT 1 FROM sum_slot s WHERE s.utc = r.interval_start)
 GROUP BY r.source
 ORDER BY r.source

-- Readings of the recomputed days whose interval_start is not a half hour of agg_slot (off the
-- 30-minute grid, which the quality gate should have rejected): per source, the count and the
-- first such interval_start. refresh raises rather than leave them out of the marts.
SELECT r.source, sum(r.n)::integer AS readings, min(r.interval_start) AS first_start
  FROM agg_read r
 WHERE NOT EXISTS (SELECT 1 FROM agg_slot s WHERE s.utc = r.interval_start)
 GROUP BY r.source
 ORDER BY r.source

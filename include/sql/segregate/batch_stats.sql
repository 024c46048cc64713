-- What one validated batch holds per source: rows and the time range they cover (the range
-- decides which monthly partitions must exist before the rows arrive).
-- batch_id: audit.load_batch.batch_id
SELECT source, count(*) AS rows, min(interval_start) AS first, max(interval_start) AS last
  FROM staging.reading
 WHERE batch_id = %(batch_id)s
 GROUP BY source
 ORDER BY source;

-- The rows of one batch as the suite sees them (the GX query asset, and {batch} of a failed
-- unexpected_rows_expectation when its sample rows are fetched).
SELECT meter_id, source, interval_start, kwh, quality
  FROM staging.reading
 WHERE batch_id = %(batch_id)s

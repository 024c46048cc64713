-- The rows of one batch (the {rows} of a failed check's rows_query).
SELECT meter_id, channel, source, interval_start, kwh, quality
  FROM staging.reading
 WHERE batch_id = %(batch_id)s

-- Add the batch's readings of one source whose (meter, channel, interval) has no reading yet. Runs after
-- supersede_source.sql, so every key that already existed conflicts and is left alone here;
-- the row count is the batch's "promoted" (new) count.
-- {table}: from the fixed mapping in meterflow.segregate. batch_id, source: parameters.
-- new_months: months without a partition before this batch; load_partition_*.sql loads them.
INSERT INTO {table} (meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at)
SELECT meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at
  FROM staging.reading
 WHERE batch_id = %(batch_id)s
   AND source = %(source)s
   AND date_trunc('month', interval_start AT TIME ZONE 'UTC') <> ALL (%(new_months)s::timestamp[])
ON CONFLICT (meter_id, channel, interval_start) DO NOTHING;

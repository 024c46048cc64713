-- The batch's readings of one source that fall in months without a partition yet, into the
-- index-less month tables. The row count is the batch's "promoted" (new) count for them: a
-- month without a partition holds no stored reading. A (meter, channel, interval) staged twice makes
-- the primary key of load_partition_index.sql fail (the batch is then not promoted).
-- months: the UTC month starts loaded this way (timestamp without time zone).
INSERT INTO {loading} (meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at)
SELECT meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at
  FROM staging.reading
 WHERE batch_id = %(batch_id)s
   AND source = %(source)s
   AND date_trunc('month', interval_start AT TIME ZONE 'UTC') = ANY(%(months)s::timestamp[]);

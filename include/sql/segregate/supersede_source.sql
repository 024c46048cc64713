-- Replace stored readings of one source by the batch's readings where the upsert rule says so
-- (see classify_source.sql). The row count is the batch's "superseded" count.
-- {table}: from the fixed mapping in meterflow.segregate. batch_id, source: parameters.
-- new_months: months loaded through load_partition_*.sql, left out (see classify_source.sql).
UPDATE {table} AS t
   SET kwh         = s.kwh,
       quality     = s.quality,
       batch_id    = s.batch_id,
       ingested_at = s.ingested_at
  FROM staging.reading AS s
 WHERE s.batch_id = %(batch_id)s
   AND s.source = %(source)s
   AND t.meter_id = s.meter_id
   AND t.channel = s.channel
   AND t.interval_start = s.interval_start
   AND t.interval_start BETWEEN %(first)s AND %(last)s
   AND date_trunc('month', s.interval_start AT TIME ZONE 'UTC') <> ALL (%(new_months)s::timestamp[])
   AND (meter.quality_rank(s.quality) > meter.quality_rank(t.quality)
        OR (meter.quality_rank(s.quality) = meter.quality_rank(t.quality)
            AND s.batch_id >= t.batch_id));

-- Remove one archived UTC day; returns what was removed so the caller can compare it with the
-- exported snapshot (and roll back when it differs).
WITH gone AS (
    DELETE FROM {table}
     WHERE interval_start >= %(start)s AND interval_start < %(end)s
 RETURNING meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at
)
SELECT count(*), coalesce(sum(kwh), 0),
       md5(coalesce(string_agg(
           meter.reading_line(meter_id, channel, interval_start, kwh, quality, batch_id,
                              ingested_at),
           E'\n' ORDER BY meter_id, channel, interval_start), ''))
  FROM gone

-- What one UTC day of a source table holds, exactly: counted and fingerprinted in the same
-- snapshot as the export, and compared with what the delete removes.
SELECT count(*)                                  AS rows,
       coalesce(sum(kwh), 0)                     AS kwh_sum,
       min(interval_start)                       AS first_interval,
       max(interval_start)                       AS last_interval,
       md5(coalesce(string_agg(
           meter.reading_line(meter_id, channel, interval_start, kwh, quality, batch_id,
                              ingested_at),
           E'\n' ORDER BY meter_id, channel, interval_start), '')) AS fingerprint
  FROM {table}
 WHERE interval_start >= %(start)s AND interval_start < %(end)s

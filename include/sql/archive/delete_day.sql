-- Remove one archived UTC day; returns what was removed so the caller can compare it with the
-- exported snapshot (and roll back when it differs), and how many of the removed readings the
-- objects read back from S3 (_verify, loaded in this transaction) do not hold: neither the
-- same values nor a reading that beats it by the promotion rule (meter.archive_holds, V023).
WITH gone AS (
    DELETE FROM {table}
     WHERE interval_start >= %(start)s AND interval_start < %(end)s
 RETURNING meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at
)
SELECT count(*), coalesce(sum(g.kwh), 0),
       md5(coalesce(string_agg(
           meter.reading_line(g.meter_id, g.channel, g.interval_start, g.kwh, g.quality,
                              g.batch_id, g.ingested_at),
           E'\n' ORDER BY g.meter_id, g.channel, g.interval_start), '')),
       count(*) FILTER (WHERE NOT meter.archive_holds(g.kwh, g.quality, g.batch_id,
                                                      g.ingested_at, v.kwh, v.quality,
                                                      v.batch_id, v.ingested_at_us))
  FROM gone g
  LEFT JOIN _verify v
    ON v.meter_id = g.meter_id AND v.channel = g.channel
   AND v.interval_start_us = meter.epoch_us(g.interval_start)

-- A day that is already archived and got late readings since: the archived rows (_archived,
-- loaded from the day's Parquet; an object of schema version 1 has no channel and loads as
-- E1) and the warehouse's rows merged with the promotion rule, per (meter, channel,
-- interval), exactly as include/sql/segregate/classify_source.sql states it: the higher
-- quality rank wins; on the same rank the newer batch (the larger batch_id) wins, and on the
-- same batch the warehouse's reading (a correction promoted after the archive is kept).
COPY (
    SELECT DISTINCT ON (meter_id, channel, interval_start_us)
           meter_id, channel, interval_start_us, kwh, quality, batch_id, ingested_at_us
      FROM (SELECT meter_id, channel, interval_start_us, kwh, quality, batch_id,
                   ingested_at_us, 1 AS archived
              FROM _archived
            UNION ALL
            SELECT meter_id, channel, meter.epoch_us(interval_start), kwh, quality, batch_id,
                   meter.epoch_us(ingested_at), 0
              FROM {table}
             WHERE interval_start >= %(start)s AND interval_start < %(end)s) r
     ORDER BY meter_id, channel, interval_start_us, meter.quality_rank(quality) DESC,
              batch_id DESC, archived
) TO STDOUT (FORMAT csv)

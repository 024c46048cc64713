-- Archived readings (_restore, loaded from Parquet; an object of schema version 1 has no
-- channel and loads as E1) back into their source table. Idempotent: a reading already there
-- (restored before, or re-delivered since) is left as it is.
INSERT INTO {table} (meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at)
SELECT meter_id, channel, meter.from_epoch_us(interval_start_us), kwh, quality, batch_id,
       meter.from_epoch_us(ingested_at_us)
  FROM _restore
ON CONFLICT (meter_id, channel, interval_start) DO NOTHING

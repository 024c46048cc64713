-- Archived readings (_restore, loaded from Parquet) back into their source table. Idempotent:
-- a reading already there (restored before, or re-delivered since) is left as it is.
INSERT INTO {table} (meter_id, interval_start, kwh, quality, batch_id, ingested_at)
SELECT meter_id, meter.from_epoch_us(interval_start_us), kwh, quality, batch_id,
       meter.from_epoch_us(ingested_at_us)
  FROM _restore
ON CONFLICT (meter_id, channel, interval_start) DO NOTHING

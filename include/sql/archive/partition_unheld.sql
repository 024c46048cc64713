-- Before a partition is dropped (under its ACCESS EXCLUSIVE lock): how many of its readings
-- the objects read back from S3 (_verify, loaded in this transaction) do not hold, per
-- meter.archive_holds (V023). Must be 0.
SELECT count(*) FILTER (WHERE NOT meter.archive_holds(r.kwh, r.quality, r.batch_id,
                                                      r.ingested_at, v.kwh, v.quality,
                                                      v.batch_id, v.ingested_at_us))
  FROM {partition} r
  LEFT JOIN _verify v
    ON v.meter_id = r.meter_id AND v.channel = r.channel
   AND v.interval_start_us = meter.epoch_us(r.interval_start)

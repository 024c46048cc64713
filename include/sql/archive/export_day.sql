-- One UTC day of a source table as CSV for the Parquet writer (schema version 2: with the
-- channel); times as epoch microseconds, in key order (meter, channel, interval start).
COPY (
    SELECT meter_id, channel, meter.epoch_us(interval_start), kwh, quality, batch_id,
           meter.epoch_us(ingested_at)
      FROM {table}
     WHERE interval_start >= %(start)s AND interval_start < %(end)s
     ORDER BY meter_id, channel, interval_start
) TO STDOUT (FORMAT csv)

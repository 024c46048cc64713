-- One UTC day of a source table as CSV for the Parquet writer; times as epoch microseconds.
COPY (
    SELECT meter_id, meter.epoch_us(interval_start), kwh, quality, batch_id,
           meter.epoch_us(ingested_at)
      FROM {table}
     WHERE interval_start >= %(start)s AND interval_start < %(end)s
     ORDER BY meter_id, interval_start
) TO STDOUT (FORMAT csv)

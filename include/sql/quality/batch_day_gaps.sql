-- The incomplete meter-channel-days of one batch (the {gaps} of a failed check's rows_query).
SELECT meter_id, channel, local_day, readings, intervals, expected
  FROM staging.batch_day_gap
 WHERE batch_id = %(batch_id)s

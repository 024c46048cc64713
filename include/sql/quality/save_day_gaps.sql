-- The batch's meter-days whose distinct intervals differ from their local day's (48, 46 or
-- 50): what the day_complete check reports ({gaps} in its rows_query).
INSERT INTO staging.batch_day_gap (batch_id, meter_id, local_day, readings, intervals, expected)
SELECT %(batch_id)s, meter_id, local_day, readings, intervals, expected
  FROM profile_of_batch
 WHERE intervals <> expected

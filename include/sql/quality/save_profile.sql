-- The batch's profile replaces the one of an earlier validation (same transaction).
INSERT INTO staging.batch_profile
       (batch_id, meter_id, local_day, readings, null_kwh, min_kwh, max_kwh, estimated,
        future, misaligned, duplicates, intervals, expected)
SELECT %(batch_id)s, meter_id, local_day, readings, null_kwh, min_kwh, max_kwh, estimated,
       future, misaligned, duplicates, intervals, expected
  FROM profile_of_batch

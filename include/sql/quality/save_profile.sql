-- The batch's profile replaces the one of an earlier validation (same transaction), with the
-- intervals each local day should have (48, 46 or 50 in setting local_tz: mart.day_intervals).
INSERT INTO staging.batch_profile
       (batch_id, meter_id, local_day, readings, null_kwh, min_kwh, max_kwh, estimated,
        future, misaligned, duplicates, intervals, expected)
SELECT %(batch_id)s, meter_id, local_day, readings, null_kwh, min_kwh, max_kwh, estimated,
       future, misaligned, duplicates, intervals, mart.day_intervals(local_day, %(tz)s)
  FROM profile_of_batch

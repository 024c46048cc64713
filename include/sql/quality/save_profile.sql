-- The batch's profile, one row per meter: its meter-days (profile_of_batch) summed. It
-- replaces the one of an earlier validation (forget_profile.sql, same transaction).
INSERT INTO staging.batch_profile
       (batch_id, meter_id, days, readings, null_kwh, min_kwh, max_kwh, estimated, future,
        misaligned, duplicates, incomplete_days)
SELECT %(batch_id)s, meter_id, count(*), sum(readings), sum(null_kwh), min(min_kwh),
       max(max_kwh), sum(estimated), sum(future), sum(misaligned), sum(duplicates),
       count(*) FILTER (WHERE intervals <> expected)
  FROM profile_of_batch
 GROUP BY meter_id

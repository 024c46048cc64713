-- The batch's profile, one row per meter (profile.sql), copied in by
-- meterflow.quality.profile_batch. It replaces the one of an earlier validation
-- (forget_profile.sql, same transaction).
COPY staging.batch_profile
     (batch_id, meter_id, days, readings, null_kwh, min_kwh, max_kwh, estimated, future,
      misaligned, duplicates, incomplete_days)
FROM STDIN

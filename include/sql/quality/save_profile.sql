-- The batch's profile, one row per meter and channel (profile.sql, and limit_kwh: the limit
-- of the channel's largest reading, NULL for a non-energy channel), copied in by
-- meterflow.quality.profile_batch. It replaces the one of an earlier validation
-- (forget_profile.sql, same transaction).
COPY staging.batch_profile
     (batch_id, meter_id, channel, days, readings, null_kwh, min_kwh, max_kwh, estimated,
      future, misaligned, duplicates, incomplete_days, limit_kwh)
FROM STDIN

-- The profile of one batch, a row per meter and channel (the {profile} of a failed check's
-- rows_query).
SELECT *
  FROM staging.batch_profile
 WHERE batch_id = %(batch_id)s

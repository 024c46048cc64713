-- The profile of an earlier validation of the batch, replaced by this one.
DELETE FROM staging.batch_profile
 WHERE batch_id = %(batch_id)s

-- The profile and day gaps of an earlier validation of the batch, replaced by this one.
WITH gaps AS (
    DELETE FROM staging.batch_day_gap
     WHERE batch_id = %(batch_id)s
)
DELETE FROM staging.batch_profile
 WHERE batch_id = %(batch_id)s

-- An approval file for a tranche (meterflow.lifecycle): approved meters become notified,
-- rejected ones return to eligible with the sender's reason. Only meters still 'selected' in that
-- tranche are touched.
-- Parameters: tranche_id, arrays meter_id, outcome ('approved' | 'rejected'), reason.
-- Returns (outcome, site_key) per meter moved; the caller then judges the rejected meters'
-- sites again (meter.apply_site_rule) in a second statement of the same transaction.
WITH f AS (
    SELECT * FROM unnest(%(meter_id)s::text[], %(outcome)s::text[], %(reason)s::text[])
                  AS f (meter_id, outcome, reason)
), marked AS (
    UPDATE meter.tranche_meter t
       SET outcome = f.outcome, reason = f.reason
      FROM f
     WHERE t.tranche_id = %(tranche_id)s AND t.meter_id = f.meter_id
    RETURNING t.meter_id, t.site_key, f.outcome, f.reason
), moved AS (
    UPDATE meter.meter m
       SET status = CASE k.outcome WHEN 'approved' THEN 'notified' ELSE 'eligible' END,
           status_since = clock_timestamp(),
           status_reason = k.reason
      FROM marked k
     WHERE m.meter_id = k.meter_id AND m.status = 'selected'
    RETURNING k.outcome, k.site_key
)
SELECT outcome, site_key FROM moved;

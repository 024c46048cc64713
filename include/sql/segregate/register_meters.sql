-- Meters seen for the first time are registered with the source of their readings and region
-- 'unassigned' (site and owner come later from the registry feed), already judged
-- (meter.initial_status, V024: eligible unless on an exclusion list). Known meters are untouched.
-- batch_id: audit.load_batch.batch_id
WITH seen AS (
    SELECT DISTINCT r.meter_id, r.source
      FROM staging.reading r
     WHERE r.batch_id = %(batch_id)s
       AND NOT EXISTS (SELECT 1 FROM meter.meter k WHERE k.meter_id = r.meter_id)
)
INSERT INTO meter.meter (meter_id, source, status, status_reason)
SELECT s.meter_id, s.source, j.status, j.reason
  FROM seen s
  JOIN meter.initial_status(ARRAY(SELECT meter_id FROM seen), NULL) j USING (meter_id)
ON CONFLICT (meter_id) DO NOTHING;

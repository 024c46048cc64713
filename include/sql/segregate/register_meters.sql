-- Meters seen for the first time are registered with the source of their readings and region
-- 'unassigned' (site and owner come later from the registry feed). Known meters are untouched.
-- batch_id: audit.load_batch.batch_id
INSERT INTO meter.meter (meter_id, source)
SELECT DISTINCT meter_id, source
  FROM staging.reading
 WHERE batch_id = %(batch_id)s
ON CONFLICT (meter_id) DO NOTHING;

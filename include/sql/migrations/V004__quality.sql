-- Quality gate (meter_quality): each row of audit.quality_result records the gate's decision
-- for that validation run (a batch re-validated by hand gets a new row), so the history of a
-- batch reads without joining its current status. success stays GX's own flag (every
-- expectation passed); a batch whose only failures are warnings is success = false, verdict
-- 'validated'.
ALTER TABLE audit.quality_result
    ADD COLUMN verdict text NOT NULL CHECK (verdict IN ('validated', 'rejected')),
    ADD COLUMN run_name text;

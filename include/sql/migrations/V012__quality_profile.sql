-- Quality gate speed, second step: the suite judges a *profile* of the batch.
--
-- Checked row by row, GX read a 5-million-row batch a dozen times (once per metric bundle,
-- twice per unexpected_rows query, a regex on every row): 50x a plain scan. Every check of
-- the suite is a count, a bound or a per-meter-day figure, so one parallel pass over the
-- batch's staging rows (include/sql/quality/profile.sql, one hash aggregate by meter and
-- local day) computes them all into this table, and GX validates these rows: ~1/48 of the
-- batch, so its dozen queries cost milliseconds. The failures' row counts and sample rows are
-- still read from staging.reading (each check's rows_query), for a failed check only.
CREATE TABLE staging.batch_profile (
    batch_id    bigint      NOT NULL,
    meter_id    text        NOT NULL,
    local_day   date        NOT NULL,  -- in setting local_tz
    readings    bigint      NOT NULL,
    null_kwh    bigint      NOT NULL,  -- readings without kWh
    min_kwh     numeric,
    max_kwh     numeric,
    estimated   bigint      NOT NULL,  -- quality E
    future      bigint      NOT NULL,  -- interval_start after the moment of profiling
    misaligned  bigint      NOT NULL,  -- interval_start off the 30-minute grid
    duplicates  bigint      NOT NULL,  -- aligned readings beyond one per (meter, interval)
    intervals   integer     NOT NULL,  -- distinct interval starts
    expected    integer     NOT NULL,  -- intervals of that local day: 48, 46 or 50
    profiled_at timestamptz NOT NULL DEFAULT now()
);
-- One row per (batch_id, meter_id, local_day) by construction (profile.sql groups by them).
-- Not a primary key: its B-tree, comparing meter ids in the database's collation, cost 0.9 s
-- of writing a 5M-row batch's 104k profile rows (0.1 s without); the gate reads one batch's
-- rows, so a BRIN on batch_id (as on staging.reading) is all it needs.
CREATE INDEX batch_profile_batch ON staging.batch_profile USING brin (batch_id)
    WITH (pages_per_range = 32);

-- The profile of the batch named by the session setting meterflow.batch_id, which
-- meterflow.quality puts into the options of GX's connections (as V010 did for the rows).
CREATE VIEW staging.profile_under_check AS
SELECT meter_id, local_day, readings, null_kwh, min_kwh, max_kwh, estimated, future,
       misaligned, duplicates, intervals, expected
  FROM staging.batch_profile
 WHERE batch_id = (SELECT current_setting('meterflow.batch_id')::bigint);

-- GX no longer reads the rows themselves.
DROP VIEW staging.batch_under_check;

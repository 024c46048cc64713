-- Validation, estimation and editing (VEE, issue 23; meterflow.vee, docs/vee.md).
--
-- Readings are never altered by validation: a suspect reading stays as it is and gets a row in
-- audit.vee_flag per rule it breaks (rule codes from include/config/vee.yaml). A missing half
-- hour of an energy channel is estimated: the estimate is written into meter.readings_a|b|c
-- with quality 'E' and batch_id 0 (models.VEE_BATCH_ID: no load_batch, meterflow's own), and
-- its method and inputs go to audit.vee_estimate. Promotion already ranks quality, so a later
-- actual replaces the estimate in the readings; the estimate's audit row is then closed
-- (replaced_at, replaced_by 'actual', the actual's kWh, quality and batch), never deleted.
-- A re-estimate with another value (new actuals around a gap) closes the old row as 'revised'.

-- One row per reading (or missing half hour, rule GAP) and rule broken. Written once per
-- key: a re-run of the same days adds nothing (ON CONFLICT DO NOTHING).
CREATE TABLE audit.vee_flag (
    meter_id       text        NOT NULL,
    channel        text        NOT NULL,
    interval_start timestamptz NOT NULL,
    rule           text        NOT NULL,  -- a code of vee.yaml: SPIKE, FLAT, ZERO, HIGH, LOW, GAP
    source         char(1)     NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date     date        NOT NULL,  -- local day of the interval (vee.yaml timezone)
    kwh            numeric,               -- the reading's value when flagged (NULL for GAP)
    detail         jsonb       NOT NULL DEFAULT '{}',  -- the rule's thresholds and inputs
    run_id         text,
    flagged_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, channel, interval_start, rule)
);
CREATE INDEX vee_flag_day ON audit.vee_flag (local_date, source);

-- Every estimate ever written. The current estimate of a half hour is its row with
-- replaced_at NULL (at most one: the partial unique index).
CREATE TABLE audit.vee_estimate (
    estimate_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id         text        NOT NULL,
    channel          text        NOT NULL,
    interval_start   timestamptz NOT NULL,
    source           char(1)     NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date       date        NOT NULL,
    kwh              numeric     NOT NULL,
    method           text        NOT NULL,  -- LINEAR, LIKE_DAY (vee.yaml estimation codes)
    inputs           jsonb       NOT NULL,  -- what the method used (docs/vee.md)
    run_id           text,
    estimated_at     timestamptz NOT NULL DEFAULT now(),
    replaced_at      timestamptz,
    replaced_by      text CHECK (replaced_by IN ('actual', 'revised')),
    replacing_kwh    numeric,
    replacing_quality char(1),
    replacing_batch  bigint,
    CHECK ((replaced_at IS NULL) = (replaced_by IS NULL))
);
CREATE UNIQUE INDEX vee_estimate_current
    ON audit.vee_estimate (meter_id, channel, interval_start) WHERE replaced_at IS NULL;
CREATE INDEX vee_estimate_day ON audit.vee_estimate (local_date, source);

-- The share of estimated readings per meter, channel and local day of the energy channels, as
-- of the last VEE run over that day (meterflow.vee keeps it; marts, email and meter pages read
-- it). readings: every reading of the day; estimated: those with quality E; flagged: readings
-- with at least one audit.vee_flag row.
CREATE TABLE mart.vee_daily (
    source     char(1) NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date date    NOT NULL,
    meter_id   text    NOT NULL,
    channel    text    NOT NULL,
    expected   integer NOT NULL,  -- half hours of the local day: 48, or 46/50 on clock changes
    readings   integer NOT NULL,
    estimated  integer NOT NULL,
    flagged    integer NOT NULL,
    PRIMARY KEY (local_date, source, meter_id, channel)
);

-- Per source and local day: the share of estimated readings (energy channels).
CREATE VIEW mart.estimated_share_daily AS
SELECT source, local_date, sum(readings) AS readings, sum(estimated) AS estimated,
       round(sum(estimated)::numeric / nullif(sum(readings), 0), 4) AS estimated_share,
       sum(flagged) AS flagged, count(DISTINCT meter_id) AS meters
  FROM mart.vee_daily GROUP BY source, local_date;

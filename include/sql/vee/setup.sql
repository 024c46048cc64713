-- The temporary tables of one VEE run over one source (meterflow.vee.run_source); dropped at
-- the end of its transaction.
-- vee_slot:    every UTC half hour of the processed local days: its local day and local half
--              hour of the day (0-47; the two autumn 01:00 half hours share one)
-- vee_series:  the energy series (meter, channel) judged: a reading in the days or shortly
--              before them (reported_within_days)
-- vee_missing: the half hours of those series without a reading other than meterflow's own
--              estimate, with their run (grp: equal for consecutive missing half hours)
-- vee_est:     the estimates of this run
-- vee_like:    LIKE_DAY's like-day readings summed per needed day and local half hour
CREATE TEMP TABLE vee_slot (
    interval_start timestamptz PRIMARY KEY,
    local_date     date     NOT NULL,
    slot           smallint NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE vee_series (
    meter_id text NOT NULL,
    channel  text NOT NULL,
    kind     text NOT NULL,
    PRIMARY KEY (meter_id, channel)
) ON COMMIT DROP;
CREATE TEMP TABLE vee_missing (
    meter_id       text        NOT NULL,
    channel        text        NOT NULL,
    interval_start timestamptz NOT NULL,
    local_date     date        NOT NULL,
    slot           smallint    NOT NULL,
    grp            timestamptz NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE vee_est (
    meter_id       text        NOT NULL,
    channel        text        NOT NULL,
    interval_start timestamptz NOT NULL,
    local_date     date        NOT NULL,
    kwh            numeric     NOT NULL,
    method         text        NOT NULL,
    inputs         jsonb       NOT NULL,
    PRIMARY KEY (meter_id, channel, interval_start)
) ON COMMIT DROP;
CREATE TEMP TABLE vee_like (
    meter_id   text     NOT NULL,
    channel    text     NOT NULL,
    local_date date     NOT NULL,
    like_date  date     NOT NULL,
    slot       smallint NOT NULL,
    kwh        numeric  NOT NULL,
    n          integer  NOT NULL
) ON COMMIT DROP;

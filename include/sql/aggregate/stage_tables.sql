-- Scratch tables of one refresh (one transaction; dropped at commit). stage_slots.sql,
-- stage_readings.sql and stage_meter_days.sql add agg_slot, agg_read and agg_meter_day
-- (CREATE TABLE AS).
-- agg_asked: the (source, local day) pairs asked for; agg_days: those of them this refresh
-- recomputes (unchanged_days.sql drops the days whose readings did not change).
-- agg_profile: readings of those days summed per source, local day and local half hour of the
-- day (slot 0-47).
CREATE TEMP TABLE agg_days (
    source     char(1) NOT NULL,
    local_date date    NOT NULL,
    PRIMARY KEY (source, local_date)
) ON COMMIT DROP;

CREATE TEMP TABLE agg_asked (
    source     char(1) NOT NULL,
    local_date date    NOT NULL,
    PRIMARY KEY (source, local_date)
) ON COMMIT DROP;

CREATE TEMP TABLE agg_profile (
    source     char(1)  NOT NULL,
    local_date date     NOT NULL,
    slot       smallint NOT NULL,
    kwh        numeric  NOT NULL,
    n          integer  NOT NULL
) ON COMMIT DROP;

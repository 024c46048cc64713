-- Scratch tables of one refresh (one transaction; dropped at commit). stage_meter_days.sql adds
-- agg_meter_day (CREATE TABLE AS).
-- agg_asked: the (source, local day) pairs asked for; agg_days: those of them this refresh
-- recomputes, with the version of their day sums (day_versions.sql; unchanged_days.sql drops
-- the days whose version and tariffs are those of their last refresh).
-- agg_profile: the day sums of those days per source, local day and local half hour (slot 0-47):
-- import kWh and readings (kwh, n), export kWh and readings (export_kwh, export_n).
CREATE TEMP TABLE agg_days (
    source     char(1) NOT NULL,
    local_date date    NOT NULL,
    version    bigint,
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
    n          integer  NOT NULL,
    export_kwh numeric  NOT NULL,
    export_n   integer  NOT NULL
) ON COMMIT DROP;

-- Day sums, kept when readings are written (aggregate on write): what every daily mart of a
-- source's local day is built from, so meter_peak_report reads 48 times fewer rows than the
-- readings. meterflow.aggregation.resum computes them from the readings of whole (source,
-- local day)s; promotion (meterflow.segregate.promote_batch) and restore
-- (meterflow.archive.restore) call it in their own transaction for the days they wrote, and a
-- refresh calls it for the days that have no sums yet or sums under other tariffs.
-- Archiving leaves the sums, like the marts: a row is only replaced by one computed from at
-- least as many intervals.

-- Per source, local day and meter: kWh and intervals, and per tariff (the i-th element belongs
-- to the i-th tariff of the set the fingerprint `tariffs` names, meterflow.aggregation.
-- fingerprint) the kWh and intervals inside its peak band.
CREATE TABLE mart.meter_day (
    source     char(1)   NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date date      NOT NULL,
    meter_id   text      NOT NULL,
    tariffs    text      NOT NULL,
    kwh        numeric   NOT NULL,
    intervals  integer   NOT NULL,
    peak_kwh   numeric[] NOT NULL,
    peak_n     integer[] NOT NULL,
    PRIMARY KEY (local_date, source, meter_id)  -- the order a refresh reads them in
);

-- Per source, local day and local half hour of the day (slot 0-47; the two October 01:00 half
-- hours share one): all meters' kWh and readings. mart.load_profile_daily is built from it.
CREATE TABLE mart.slot_day (
    source     char(1)  NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date date     NOT NULL,
    slot       smallint NOT NULL CHECK (slot BETWEEN 0 AND 47),
    kwh        numeric  NOT NULL,
    readings   integer  NOT NULL,
    PRIMARY KEY (source, local_date, slot)
);

-- Per source and local day: the tariff fingerprint its sums were last computed under and a
-- version drawn from mart.day_sum_version each time they are computed. A refresh records the
-- version it built the marts from (mart.refresh_mark) and skips the days whose version did not
-- move since.
CREATE SEQUENCE mart.day_sum_version;
CREATE TABLE mart.day_sum (
    source     char(1)     NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date date        NOT NULL,
    tariffs    text        NOT NULL,
    version    bigint      NOT NULL,
    readings   bigint      NOT NULL,
    summed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, local_date)
);

-- The marks now record the day-sum version a refresh used instead of a scan of the readings'
-- row versions (V011). Old marks are dropped: the next refresh of a day sums it once.
DROP TABLE mart.refresh_mark;
CREATE TABLE mart.refresh_mark (
    source     char(1)     NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date date        NOT NULL,
    version    bigint      NOT NULL,
    tariffs    text        NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, local_date)
);

-- The daily marts are now written from the day sums in (local_date, source, meter_id) order,
-- and read by local day (reports, roll-ups, the refresh's own joins): primary keys that lead
-- with the local day (after the tariff) serve those reads and grow at their right edge on a
-- refresh, and the separate local-day indexes go. One B-tree per mart instead of two: writing
-- 420k peak_daily rows costs ~30% less (docs/benchmarks.md).
ALTER TABLE mart.peak_daily
    DROP CONSTRAINT peak_daily_pkey,
    ADD PRIMARY KEY (tariff, local_date, source, meter_id);
DROP INDEX mart.peak_daily_date;
ALTER TABLE mart.consumption_daily
    DROP CONSTRAINT consumption_daily_pkey,
    ADD PRIMARY KEY (local_date, source, meter_id);
DROP INDEX mart.consumption_daily_date;

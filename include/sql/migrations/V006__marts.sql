-- Marts (meter_peak_report): daily peak/off-peak means per tariff, consumption by day, ISO week
-- and month, by region, and the half-hourly load profile. Local dates are in the tariffs'
-- time zone (include/config/tariffs.yaml, default Europe/London).
--
-- The marts outlive the raw readings: meter_archive removes readings older than 30 days (by
-- UTC day), but a per-meter day row is only replaced by one computed from at least as many
-- intervals (include/sql/aggregate/*.sql), so a day's mart rows stay once its readings are
-- archived, even when the archive took only part of a local day. Weekly, monthly and regional
-- rows are rolled up from mart.consumption_daily, not from raw readings, for the same reason.
-- Rows are rewritten only when a value changes: a second refresh of the same days writes
-- nothing.

-- Number of half-hour intervals of a local calendar day in zone `tz`: 48, or 46 / 50 on the
-- days the clocks go forward / back (Europe/London: last Sunday of March / October).
CREATE FUNCTION mart.day_intervals(d date, tz text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
RETURN (extract(epoch FROM ((d + 1)::timestamp AT TIME ZONE tz) - (d::timestamp AT TIME ZONE tz))
        / 1800)::integer;

-- One row per tariff, source, meter and local day. "peak" is inside the tariff's peak band,
-- "off-peak" the rest. Means are kWh per half hour; NULL when the day has no interval in the
-- band (e.g. a weekend under the weekday evening peak). completeness = intervals present /
-- intervals the local day has (46, 48 or 50).
CREATE TABLE mart.peak_daily (
    tariff             text     NOT NULL,
    source             char(1)  NOT NULL CHECK (source IN ('A', 'B', 'C')),
    meter_id           text     NOT NULL,
    local_date         date     NOT NULL,
    peak_mean_kwh      numeric,
    offpeak_mean_kwh   numeric,
    peak_kwh           numeric  NOT NULL,
    offpeak_kwh        numeric  NOT NULL,
    total_kwh          numeric  NOT NULL,
    peak_intervals     integer  NOT NULL,
    offpeak_intervals  integer  NOT NULL,
    intervals          integer  NOT NULL,
    expected_intervals integer  NOT NULL CHECK (expected_intervals BETWEEN 44 AND 52),
    completeness       numeric(5, 4) NOT NULL,
    PRIMARY KEY (tariff, source, meter_id, local_date)
);
CREATE INDEX peak_daily_date ON mart.peak_daily (tariff, local_date);

CREATE TABLE mart.consumption_daily (
    source             char(1)  NOT NULL CHECK (source IN ('A', 'B', 'C')),
    meter_id           text     NOT NULL,
    local_date         date     NOT NULL,
    kwh                numeric  NOT NULL,
    intervals          integer  NOT NULL,
    expected_intervals integer  NOT NULL CHECK (expected_intervals BETWEEN 44 AND 52),
    completeness       numeric(5, 4) NOT NULL,
    PRIMARY KEY (source, meter_id, local_date)
);
CREATE INDEX consumption_daily_date ON mart.consumption_daily (local_date);

-- ISO weeks (Monday to Sunday, local calendar): week_start is the Monday.
CREATE TABLE mart.consumption_weekly (
    source             char(1)  NOT NULL,
    meter_id           text     NOT NULL,
    week_start         date     NOT NULL CHECK (extract(isodow FROM week_start) = 1),
    iso_year           integer  NOT NULL,
    iso_week           integer  NOT NULL,
    kwh                numeric  NOT NULL,
    intervals          integer  NOT NULL,
    expected_intervals integer  NOT NULL,
    days               integer  NOT NULL,
    PRIMARY KEY (source, meter_id, week_start)
);

CREATE TABLE mart.consumption_monthly (
    source             char(1)  NOT NULL,
    meter_id           text     NOT NULL,
    month              date     NOT NULL CHECK (extract(day FROM month) = 1),
    kwh                numeric  NOT NULL,
    intervals          integer  NOT NULL,
    expected_intervals integer  NOT NULL,
    days               integer  NOT NULL,
    PRIMARY KEY (source, meter_id, month)
);

-- Region from meter.meter at the time the day was (re)computed.
CREATE TABLE mart.consumption_by_region (
    local_date         date     NOT NULL,
    source             char(1)  NOT NULL,
    region             text     NOT NULL,
    kwh                numeric  NOT NULL,
    meters             integer  NOT NULL,
    intervals          integer  NOT NULL,
    PRIMARY KEY (local_date, source, region)
);

-- Sum of all meters' readings per source, local day and local half hour (slot 0 = 00:00,
-- 47 = 23:30); on the October clock change the two 01:00 and 01:30 intervals share a slot.
-- Feeds the average daily load profile chart.
CREATE TABLE mart.load_profile_daily (
    source             char(1)  NOT NULL,
    local_date         date     NOT NULL,
    slot               smallint NOT NULL CHECK (slot BETWEEN 0 AND 47),
    kwh                numeric  NOT NULL,
    readings           integer  NOT NULL,
    PRIMARY KEY (source, local_date, slot)
);

-- Per-source views (always consistent with the per-meter tables they sum).
CREATE VIEW mart.source_peak_daily AS
SELECT tariff, source, local_date,
       sum(peak_kwh) / nullif(sum(peak_intervals), 0)       AS peak_mean_kwh,
       sum(offpeak_kwh) / nullif(sum(offpeak_intervals), 0) AS offpeak_mean_kwh,
       sum(total_kwh)      AS total_kwh,
       sum(intervals)      AS intervals,
       count(*)            AS meters
  FROM mart.peak_daily
 GROUP BY tariff, source, local_date;

CREATE VIEW mart.source_consumption_daily AS
SELECT source, local_date, sum(kwh) AS kwh, sum(intervals) AS intervals, count(*) AS meters
  FROM mart.consumption_daily GROUP BY source, local_date;

CREATE VIEW mart.source_consumption_weekly AS
SELECT source, week_start, iso_year, iso_week, sum(kwh) AS kwh, sum(intervals) AS intervals,
       count(*) AS meters
  FROM mart.consumption_weekly GROUP BY source, week_start, iso_year, iso_week;

CREATE VIEW mart.source_consumption_monthly AS
SELECT source, month, sum(kwh) AS kwh, sum(intervals) AS intervals, count(*) AS meters
  FROM mart.consumption_monthly GROUP BY source, month;

-- Which local days a batch touched: found through the readings' batch_id. A BRIN index is
-- nearly free to maintain on append-mostly tables whose batch ids grow with insertion order.
CREATE INDEX readings_a_batch ON meter.readings_a USING brin (batch_id);
CREATE INDEX readings_b_batch ON meter.readings_b USING brin (batch_id);
CREATE INDEX readings_c_batch ON meter.readings_c USING brin (batch_id);

-- Channels in the day sums and marts (issue 17). A meter has channels (V015): E1, E2 import
-- energy; B1, B2 export energy; Q1, K1 ... non-energy (meter.channel_kind). Consumption is
-- import energy: every existing kwh, intervals and readings column of the day sums and marts
-- now counts import channels only, and export is summed beside it in new export_* columns.
-- Non-energy channels are stored in the readings tables and summed nowhere.
--
-- Per meter and local day (mart.meter_day, mart.consumption_daily):
--   kwh               the sum of every import channel (E1 + E2);
--   intervals         the import half hours: the most any one import channel of the meter has
--                     that day (E1 and E2 of the same half hour are one interval), so
--                     completeness and the peak/off-peak means per half hour stay per meter;
--   export_kwh        the sum of every export channel; NULL when the meter has no export
--                     reading that day (a meter without solar), 0 when it exported nothing;
--   export_intervals  as intervals, for the export channels (0 without export).
-- A meter-day with only non-energy readings has no row; one with only export readings has a
-- row with kwh 0 and intervals 0 (and no mart.peak_daily row: the means are of import).
-- The replacement rule stays: a row is only replaced by one computed from at least as many
-- import and export intervals (archiving never shrinks either).
-- Per half hour (mart.slot_day, mart.load_profile_daily): kwh and readings of import channels,
-- export_kwh and export_readings of export channels.
--
-- Existing rows were summed before a reading had a channel other than E1 (V015 moved every
-- reading to E1 and ships with this migration), so they are import figures already: export
-- columns start NULL / 0.

ALTER TABLE mart.meter_day
    ADD COLUMN export_kwh       numeric,
    ADD COLUMN export_intervals integer NOT NULL DEFAULT 0;

ALTER TABLE mart.slot_day
    ADD COLUMN export_kwh      numeric NOT NULL DEFAULT 0,
    ADD COLUMN export_readings integer NOT NULL DEFAULT 0;

ALTER TABLE mart.consumption_daily
    ADD COLUMN export_kwh       numeric,
    ADD COLUMN export_intervals integer NOT NULL DEFAULT 0;

-- Roll-ups: the sum of the days' export (NULL when no day of the meter had any).
ALTER TABLE mart.consumption_weekly ADD COLUMN export_kwh numeric;
ALTER TABLE mart.consumption_monthly ADD COLUMN export_kwh numeric;
ALTER TABLE mart.consumption_by_region ADD COLUMN export_kwh numeric;

ALTER TABLE mart.load_profile_daily
    ADD COLUMN export_kwh      numeric NOT NULL DEFAULT 0,
    ADD COLUMN export_readings integer NOT NULL DEFAULT 0;

-- The per-source views gain the export beside the import (new columns go last).
CREATE OR REPLACE VIEW mart.source_consumption_daily AS
SELECT source, local_date, sum(kwh) AS kwh, sum(intervals) AS intervals, count(*) AS meters,
       sum(export_kwh) AS export_kwh, count(export_kwh) AS export_meters
  FROM mart.consumption_daily GROUP BY source, local_date;

CREATE OR REPLACE VIEW mart.source_consumption_weekly AS
SELECT source, week_start, iso_year, iso_week, sum(kwh) AS kwh, sum(intervals) AS intervals,
       count(*) AS meters, sum(export_kwh) AS export_kwh, count(export_kwh) AS export_meters
  FROM mart.consumption_weekly GROUP BY source, week_start, iso_year, iso_week;

CREATE OR REPLACE VIEW mart.source_consumption_monthly AS
SELECT source, month, sum(kwh) AS kwh, sum(intervals) AS intervals, count(*) AS meters,
       sum(export_kwh) AS export_kwh, count(export_kwh) AS export_meters
  FROM mart.consumption_monthly GROUP BY source, month;

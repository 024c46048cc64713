-- Channels (issue 17) through the archive and the quality gate.
--
-- Archive: a day's fingerprint (md5 of its reading lines in key order) must cover the channel,
-- or E1 and B1 of the same meter and interval could be swapped unnoticed between export and
-- delete. The line keeps V007's layout with the channel after the meter id; V007's
-- six-argument form stays (an overload) for anything that still calls it.
CREATE FUNCTION meter.reading_line(
    meter_id text, channel text, interval_start timestamptz, kwh numeric, quality char,
    batch_id bigint, ingested_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN concat_ws('|', meter_id, channel, meter.epoch_us(interval_start), kwh::text, quality,
                 batch_id, meter.epoch_us(ingested_at));

-- Quality gate: the profile is one row per batch, meter and *channel* (uniqueness and
-- completeness are judged per meter and channel: E1 and B1 of one meter on the same
-- intervals are two complete series, not duplicates), with the limit that channel's largest
-- reading is held to: the meter's capacity_kwh, else the batch feed's max_kwh, else
-- MF_MAX_KWH (meterflow.quality.profile_batch, through cleansing.Cleanser.limit_for); NULL
-- for a non-energy channel (kVArh is stored, never judged as kWh). A profile is transient
-- (replaced at each validation, purged with its batch), so rows of earlier versions simply
-- become E1.
ALTER TABLE staging.batch_profile
    ADD COLUMN channel text NOT NULL DEFAULT 'E1',
    ADD COLUMN limit_kwh numeric,
    DROP CONSTRAINT batch_profile_pkey,
    ADD PRIMARY KEY (batch_id, meter_id, channel);

ALTER TABLE staging.batch_day_gap ADD COLUMN channel text NOT NULL DEFAULT 'E1';

DROP VIEW staging.profile_under_check;
CREATE VIEW staging.profile_under_check AS
SELECT meter_id, channel, days, readings, null_kwh, min_kwh, max_kwh, limit_kwh, estimated,
       future, misaligned, duplicates, incomplete_days
  FROM staging.batch_profile
 WHERE batch_id = (SELECT current_setting('meterflow.batch_id')::bigint);

-- Archive (meter_archive / meter_restore): readings older than retention_days go to S3 as
-- Parquet, verified, then leave the warehouse; restore brings archived days back.

-- Microseconds since the epoch of a timestamptz: exact (extract returns numeric), zone-free;
-- how interval_start and ingested_at travel in Parquet (timestamp[us, UTC]) and back.
CREATE FUNCTION meter.epoch_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
RETURN (extract(epoch FROM t) * 1000000)::bigint;

CREATE FUNCTION meter.from_epoch_us(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
RETURN timestamptz '1970-01-01 00:00:00+00' + us * interval '1 microsecond';

-- One reading as a line of text, every column exactly. md5(string_agg(line ORDER BY key)) over
-- a day is its fingerprint: archiving deletes a day only when the rows it deletes have the
-- fingerprint of the rows it exported (a reading promoted or replaced in between keeps the
-- day in the warehouse until the next run archives it again).
CREATE FUNCTION meter.reading_line(
    meter_id text, interval_start timestamptz, kwh numeric, quality char, batch_id bigint,
    ingested_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN concat_ws('|', meter_id, meter.epoch_us(interval_start), kwh::text, quality, batch_id,
                 meter.epoch_us(ingested_at));

-- Steps of one run are read together (run_id), a day's history by (source, day).
CREATE INDEX archive_run_run ON audit.archive_run (run_id);
ALTER TABLE audit.archive_run
    ADD CONSTRAINT archive_run_status CHECK (status IN ('ok', 'skipped', 'failed')),
    ADD CONSTRAINT archive_run_source CHECK (source IN ('A', 'B', 'C'));

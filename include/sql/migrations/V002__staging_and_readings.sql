-- Staged readings: the canonical reading of ARCHITECTURE.md §4, one row per input row kept.
-- interval_start is UTC, the start of a 30-minute interval; ingested_at is when the row was
-- registered (the time stamp the mission asks for). The source file is audit.load_batch.file_name.
-- No foreign key and only a BRIN index: COPY speed matters here, rows are appended batch by
-- batch, and the loader writes the batch row in the same transaction.
CREATE TABLE staging.reading (
    batch_id       bigint      NOT NULL,
    row_no         bigint      NOT NULL,
    meter_id       text        NOT NULL,
    source         char(1)     NOT NULL CHECK (source IN ('A', 'B', 'C')),
    interval_start timestamptz NOT NULL,
    kwh            numeric     NOT NULL,
    quality        char(1)     NOT NULL DEFAULT 'A' CHECK (quality IN ('A', 'E', 'S', 'F')),
    ingested_at    timestamptz NOT NULL
);
CREATE INDEX reading_batch ON staging.reading USING brin (batch_id) WITH (pages_per_range = 32);

-- Meter registry; unknown meters are auto-registered with region 'unassigned'.
CREATE TABLE meter.meter (
    meter_id    text        PRIMARY KEY,
    source      char(1)     NOT NULL CHECK (source IN ('A', 'B', 'C')),
    site        text,
    region      text        NOT NULL DEFAULT 'unassigned',
    owner       text,
    first_seen  timestamptz NOT NULL DEFAULT now()
);

-- The three source tables. Range-partitioned by month on interval_start: ~12 partitions a
-- year per table keep planning cheap over years of data, and archiving drops whole months
-- (days of a month still inside the retention window are deleted row-wise).
CREATE TABLE meter.readings_a (
    meter_id       text        NOT NULL,
    interval_start timestamptz NOT NULL,
    kwh            numeric     NOT NULL,
    quality        char(1)     NOT NULL,
    batch_id       bigint      NOT NULL,
    ingested_at    timestamptz NOT NULL,
    PRIMARY KEY (meter_id, interval_start)
) PARTITION BY RANGE (interval_start);
CREATE TABLE meter.readings_b (LIKE meter.readings_a INCLUDING ALL) PARTITION BY RANGE (interval_start);
CREATE TABLE meter.readings_c (LIKE meter.readings_a INCLUDING ALL) PARTITION BY RANGE (interval_start);
CREATE INDEX ON meter.readings_a (interval_start);
CREATE INDEX ON meter.readings_b (interval_start);
CREATE INDEX ON meter.readings_c (interval_start);

-- Create the monthly partitions of `parent` that cover [from_ts, to_ts). Idempotent.
-- `parent` is a regclass, so callers cannot inject SQL through it.
CREATE FUNCTION meter.ensure_partitions(parent regclass, from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m        date := date_trunc('month', from_ts AT TIME ZONE 'UTC')::date;
    created  integer := 0;
    part     text;
    nsp      text;
    rel      text;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    WHILE m < to_ts AT TIME ZONE 'UTC' LOOP
        part := format('%s_%s', rel, to_char(m, 'YYYYMM'));
        IF to_regclass(format('%I.%I', nsp, part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                nsp, part, parent,
                (m::timestamp AT TIME ZONE 'UTC'),
                ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

-- For people who have ONE raw table of readings and want the three source tables, without
-- Airflow: split `readings` (meter_id, timestamp, reading_kwh) into readings_a, readings_b and
-- readings_c by the meter id's suffix letter. Run it with psql in the schema that holds
-- `readings` (e.g. PGOPTIONS='-c search_path=myschema' psql -v ON_ERROR_STOP=1 -f this_file).
-- meterflow itself does not run this file: its DAG promotes batches (promote_batch in
-- meterflow.segregate) into the partitioned meter.readings_a|b|c.
--
-- The seed design's `CREATE TABLE readings_a AS SELECT * FROM readings WHERE meter_id LIKE
-- 'SMR%A'`, done correctly:
-- - LIKE 'SMR%A' also takes ids that are no meter id ('SMRA1234A', 'SMR89154CA' ends in A),
--   and misses ' smr89135a ' (spaces, lower case). Here the id is trimmed and upper-cased and
--   must match the whole pattern ^SMR[0-9]{5}[ABC]$; the suffix is its last letter.
-- - CREATE TABLE AS copies no key: exact duplicate rows are dropped (DISTINCT) and each table
--   gets its primary key (meter_id, timestamp), so two different readings of one meter and
--   interval fail the script loudly instead of both landing.
-- - All three tables are made in one transaction: either all three exist, or none.
-- - The closing query accounts for every row: combined = A + B + C + duplicates + unmatched
--   (rows whose meter id is missing or malformed, left for a person to look at).
BEGIN;

CREATE TEMP VIEW readings_tidy AS
SELECT upper(btrim(meter_id)) AS meter_id, "timestamp", reading_kwh
  FROM readings
 WHERE upper(btrim(meter_id)) ~ '^SMR[0-9]{5}[ABC]$';

CREATE TABLE readings_a AS
SELECT DISTINCT meter_id, "timestamp", reading_kwh FROM readings_tidy WHERE right(meter_id, 1) = 'A';
CREATE TABLE readings_b AS
SELECT DISTINCT meter_id, "timestamp", reading_kwh FROM readings_tidy WHERE right(meter_id, 1) = 'B';
CREATE TABLE readings_c AS
SELECT DISTINCT meter_id, "timestamp", reading_kwh FROM readings_tidy WHERE right(meter_id, 1) = 'C';

ALTER TABLE readings_a ADD PRIMARY KEY (meter_id, "timestamp");
ALTER TABLE readings_b ADD PRIMARY KEY (meter_id, "timestamp");
ALTER TABLE readings_c ADD PRIMARY KEY (meter_id, "timestamp");
CREATE INDEX ON readings_a ("timestamp");
CREATE INDEX ON readings_b ("timestamp");
CREATE INDEX ON readings_c ("timestamp");

COMMIT;

-- combined | a | b | c | duplicates dropped | unmatched (no valid meter id)
SELECT (SELECT count(*) FROM readings)                                 AS combined,
       (SELECT count(*) FROM readings_a)                               AS a,
       (SELECT count(*) FROM readings_b)                               AS b,
       (SELECT count(*) FROM readings_c)                               AS c,
       (SELECT count(*) FROM readings_tidy)
         - (SELECT count(*) FROM readings_a) - (SELECT count(*) FROM readings_b)
         - (SELECT count(*) FROM readings_c)                           AS duplicates,
       (SELECT count(*) FROM readings)
         - (SELECT count(*) FROM readings_tidy)                        AS unmatched;

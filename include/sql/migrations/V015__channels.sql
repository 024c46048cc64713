-- Channels (issue 17): a meter has several channels — NEM12 keys a reading by NMI *and* suffix
-- (E1, E2 import energy; B1, B2 export energy; Q1, K1 reactive) — so the canonical reading
-- becomes (meter id, channel, interval start). Spreadsheets, CSV and packets carry a channel
-- column or the feed's default (E1). Every existing reading moves to E1 (ADD COLUMN with a
-- constant DEFAULT is a catalogue change in PostgreSQL 11+: no row is rewritten or lost). The
-- default stays: a writer that names no channel (an archive of schema version 1, a hand-made
-- row) means import energy, as models.DEFAULT_CHANNEL says; the loaders always name it.

-- The kind of a channel, by the NEM12 suffix convention (first letter): E import energy,
-- B export energy, anything else (Q/K reactive, V volts, ...) non-energy. The same rule as
-- meterflow.models.channel_kind (a test holds them equal). String-bodied so it inlines.
CREATE FUNCTION meter.channel_kind(channel text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE left(channel, 1) WHEN 'E' THEN 'import' WHEN 'B' THEN 'export'
                                   ELSE 'non_energy' END $$;

-- No CHECK on staging's channel: cleansing admits only models.CHANNEL_PATTERN, and a per-row
-- regular expression would tax every COPY.
ALTER TABLE staging.reading ADD COLUMN channel text NOT NULL DEFAULT 'E1';

ALTER TABLE meter.readings_a ADD COLUMN channel text NOT NULL DEFAULT 'E1';
ALTER TABLE meter.readings_b ADD COLUMN channel text NOT NULL DEFAULT 'E1';
ALTER TABLE meter.readings_c ADD COLUMN channel text NOT NULL DEFAULT 'E1';

ALTER TABLE meter.readings_a DROP CONSTRAINT readings_a_pkey,
    ADD PRIMARY KEY (meter_id, channel, interval_start);
ALTER TABLE meter.readings_b DROP CONSTRAINT readings_b_pkey,
    ADD PRIMARY KEY (meter_id, channel, interval_start);
ALTER TABLE meter.readings_c DROP CONSTRAINT readings_c_pkey,
    ADD PRIMARY KEY (meter_id, channel, interval_start);

-- A meter's own limit (a site's capacity): the highest plausible kWh in one 30-minute interval
-- of its energy channels. NULL: the feed's max_kwh, else the global MF_MAX_KWH.
ALTER TABLE meter.meter
    ADD COLUMN capacity_kwh numeric CHECK (capacity_kwh > 0);

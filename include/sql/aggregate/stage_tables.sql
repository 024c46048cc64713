-- Scratch tables of one refresh (one transaction; dropped at commit). stage_slots.sql and
-- stage_readings.sql add agg_slot and agg_read (CREATE TABLE AS).
-- agg_days: the (source, local day) pairs this refresh recomputes.
-- agg_stage: readings of those days summed per meter, local day and interval class (the OR of
-- the bits of the tariffs whose peak band holds the half hour; slot NULL), and per source,
-- local day and local half hour of the day (slot 0-47; meter_id and class NULL).
CREATE TEMP TABLE agg_days (
    source     char(1) NOT NULL,
    local_date date    NOT NULL,
    PRIMARY KEY (source, local_date)
) ON COMMIT DROP;

CREATE TEMP TABLE agg_stage (
    source     char(1)  NOT NULL,
    meter_id   text,
    local_date date     NOT NULL,
    class      integer,
    slot       smallint,
    kwh        numeric  NOT NULL,
    n          integer  NOT NULL
) ON COMMIT DROP;

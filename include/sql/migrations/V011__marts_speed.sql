-- What each mart refresh saw (meter_peak_report, include/sql/aggregate/): per source and local
-- day, the number of readings and the sum of their row versions (xmin), with a fingerprint of
-- the tariff classes and zone they were aggregated under. A refresh first takes the same two
-- figures with one cheap scan (no grouping by meter) and skips the days whose figures and
-- fingerprint are unchanged: every insert, update or delete of a reading changes them (a new
-- row version has a new xmin), so a skipped day's marts are what a recompute would write; a
-- restored dump (new xmins) only costs one recompute. Regions are rolled up for every asked
-- day regardless: they follow meter.meter, not the readings.
CREATE TABLE mart.refresh_mark (
    source     char(1) NOT NULL CHECK (source IN ('A', 'B', 'C')),
    local_date date    NOT NULL,
    readings   bigint  NOT NULL,
    versions   numeric NOT NULL,
    tariffs    text    NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, local_date)
);

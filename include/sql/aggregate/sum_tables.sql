-- sum_days: the (source, local day) pairs one resum computes (meterflow.aggregation.resum).
-- sum_slots.sql, sum_read.sql, sum_meter_days.sql and sum_profile.sql add sum_slot, sum_read,
-- sum_meter_day and sum_profile; resum drops all five when done, so it can run twice in one
-- transaction (and inside a refresh, whose own scratch tables are named agg_*).
CREATE TEMP TABLE sum_days (
    source     char(1) NOT NULL,
    local_date date    NOT NULL,
    PRIMARY KEY (source, local_date)
) ON COMMIT DROP;

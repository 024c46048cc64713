-- Before the upsert: how many of a batch's readings of one source meet a reading that is
-- already stored, and how many of those the upsert rule lets the batch replace.
--
-- The upsert rule (also in supersede_source.sql): the batch's reading replaces the stored one
-- when its quality ranks higher (meter.quality_rank: A 3 > S, F 2 > E 1), or ranks the same
-- and the batch is not older than the stored reading's batch. Otherwise the stored one is kept.
--
-- {table}: meter.readings_a | _b | _c, from the fixed source → table mapping in
-- meterflow.segregate (never from input). batch_id, source: bound parameters. new_months: the
-- UTC months loaded through load_partition_*.sql instead (no stored reading there), left out.
SELECT count(*) FILTER (WHERE replaces)     AS superseded,
       count(*) FILTER (WHERE NOT replaces) AS kept
  FROM (SELECT meter.quality_rank(s.quality) > meter.quality_rank(t.quality)
               OR (meter.quality_rank(s.quality) = meter.quality_rank(t.quality)
                   AND s.batch_id >= t.batch_id) AS replaces
          FROM staging.reading s
          JOIN {table} t
            ON t.meter_id = s.meter_id AND t.channel = s.channel
           AND t.interval_start = s.interval_start
         WHERE s.batch_id = %(batch_id)s
           AND s.source = %(source)s
           AND t.interval_start BETWEEN %(first)s AND %(last)s
           AND date_trunc('month', s.interval_start AT TIME ZONE 'UTC') <> ALL (%(new_months)s::timestamp[])) AS m;

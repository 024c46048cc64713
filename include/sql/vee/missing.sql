-- The half hours of the judged series with no reading but meterflow's own estimate (those are
-- estimated again, so a re-run over new actuals revises them), grouped into runs: grp is the
-- same for consecutive missing half hours of a series.
INSERT INTO vee_missing (meter_id, channel, interval_start, local_date, slot, grp)
SELECT meter_id, channel, interval_start, local_date, slot,
       interval_start - interval '30 minutes'
           * row_number() OVER (PARTITION BY meter_id, channel ORDER BY interval_start)
  FROM (SELECT s.meter_id, s.channel, t.interval_start, t.local_date, t.slot
          FROM vee_series s CROSS JOIN vee_slot t
        EXCEPT
        SELECT r.meter_id, r.channel, r.interval_start, t.local_date, t.slot
          FROM {table} r
          JOIN vee_slot t ON t.interval_start = r.interval_start
         WHERE r.interval_start >= %(utc_from)s AND r.interval_start < %(utc_to)s
           AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)) AS m;

-- The half hours of the judged series with no reading but meterflow's own estimate (those are
-- estimated again, so a re-run over new actuals revises them), grouped into runs: grp is the
-- same for consecutive missing half hours of a series.
INSERT INTO vee_missing (meter_id, channel, interval_start, local_date, slot, grp)
SELECT s.meter_id, s.channel, t.interval_start, t.local_date, t.slot,
       t.interval_start - interval '30 minutes'
           * row_number() OVER (PARTITION BY s.meter_id, s.channel ORDER BY t.interval_start)
  FROM vee_series s
 CROSS JOIN vee_slot t
 WHERE NOT EXISTS (
        SELECT 1 FROM {table} r
         WHERE r.meter_id = s.meter_id AND r.channel = s.channel
           AND r.interval_start = t.interval_start
           AND r.interval_start >= %(utc_from)s AND r.interval_start < %(utc_to)s
           AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s));

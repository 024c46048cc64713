-- Actuals win: close the current estimates of the processed days whose reading is no longer
-- meterflow's own estimate (promotion replaced it with an actual, or a supplier's value). The
-- estimate's row stays in the audit trail with what replaced it.
UPDATE audit.vee_estimate AS e
   SET replaced_at = now(), replaced_by = 'actual', replacing_kwh = r.kwh,
       replacing_quality = r.quality, replacing_batch = r.batch_id
  FROM {table} AS r
 WHERE e.replaced_at IS NULL
   AND e.source = %(source)s
   AND e.interval_start >= %(utc_from)s AND e.interval_start < %(utc_to)s
   AND (%(meter)s::text IS NULL OR e.meter_id = %(meter)s::text)
   AND r.meter_id = e.meter_id AND r.channel = e.channel AND r.interval_start = e.interval_start
   AND r.interval_start >= %(utc_from)s AND r.interval_start < %(utc_to)s
   AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s);

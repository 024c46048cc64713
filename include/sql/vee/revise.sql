-- A new estimate of a half hour that has a current one with another value or method: the old
-- one is closed as 'revised' (kept, with the value that replaced it).
UPDATE audit.vee_estimate AS e
   SET replaced_at = now(), replaced_by = 'revised', replacing_kwh = v.kwh,
       replacing_quality = 'E', replacing_batch = %(vee_batch)s
  FROM vee_est AS v
 WHERE e.replaced_at IS NULL
   AND e.meter_id = v.meter_id AND e.channel = v.channel AND e.interval_start = v.interval_start
   AND (e.kwh <> v.kwh OR e.method <> v.method);

-- The estimates of this run that have no current audit row (new, or revised just now).
INSERT INTO audit.vee_estimate (meter_id, channel, interval_start, source, local_date, kwh,
                                method, inputs, run_id)
SELECT v.meter_id, v.channel, v.interval_start, %(source)s, v.local_date, v.kwh, v.method,
       v.inputs, %(run_id)s
  FROM vee_est v
 WHERE NOT EXISTS (SELECT 1 FROM audit.vee_estimate e
                    WHERE e.replaced_at IS NULL AND e.meter_id = v.meter_id
                      AND e.channel = v.channel AND e.interval_start = v.interval_start);

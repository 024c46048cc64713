-- GAP: every missing half hour of a judged series (once; a re-run adds nothing).
INSERT INTO audit.vee_flag (meter_id, channel, interval_start, rule, source, local_date, kwh,
                            detail, run_id)
SELECT m.meter_id, m.channel, m.interval_start, %(code)s, %(source)s, m.local_date, NULL,
       jsonb_build_object('gap_intervals', g.gap_intervals, 'method', g.method),
       %(run_id)s
  FROM vee_missing m JOIN vee_gap g USING (meter_id, channel, grp)
 ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING;

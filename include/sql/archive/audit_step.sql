-- One step of an archive or restore run (audit.archive_run).
INSERT INTO audit.archive_run (run_id, source, day, step, rows, kwh_sum, s3_key, status, detail)
VALUES (%(run_id)s, %(source)s, %(day)s, %(step)s, %(rows)s, %(kwh_sum)s, %(s3_key)s,
        %(status)s, %(detail)s)

-- One validation run of one batch against one suite.
INSERT INTO audit.quality_result
       (batch_id, suite, success, verdict, expectations_evaluated, expectations_failed,
        failures, docs_path, run_name, started_at)
VALUES (%(batch_id)s, %(suite)s, %(success)s, %(verdict)s, %(evaluated)s, %(failed)s,
        %(failures)s, %(docs_path)s, %(run_name)s, %(started_at)s)

-- Alerts as incidents (meterflow.alerts): one row per incident, not per try. An occurrence of
-- an incident that is already open bumps its count and last_seen; it sends no mail. Mail goes
-- out grouped per DAG run (mailed_at marks the rows a message carried) and a task incident is
-- resolved when that task succeeds again (one short "resolved" message).
CREATE TABLE audit.alert (
    alert_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident     text        NOT NULL,  -- file:<feed>/<name>:<sha> | batch:<id> | task:<dag>.<task>:<error>
    kind         text        NOT NULL
        CHECK (kind IN ('file_failed', 'batch_rejected', 'task_failing', 'delivery_unknown',
                        'notice')),
    summary      text        NOT NULL,  -- one line: what happened, no traceback
    link         text,                  -- the task log in the Airflow UI
    dag_id       text,
    run_id       text,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    occurrences  integer     NOT NULL DEFAULT 1,
    state        text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    mailed_at    timestamptz,
    resolved_at  timestamptz
);
CREATE UNIQUE INDEX alert_open_once ON audit.alert (incident) WHERE state = 'open';
CREATE INDEX alert_unmailed ON audit.alert (first_seen) WHERE mailed_at IS NULL;

-- Every alert email sent (or held back by the hourly limit): who, what, how many incidents.
CREATE TABLE audit.alert_mail (
    mail_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    recipients  text        NOT NULL,
    subject     text        NOT NULL,
    incidents   integer     NOT NULL
);
CREATE INDEX alert_mail_sent ON audit.alert_mail (sent_at);

-- Schemas of the warehouse and the audit trail every DAG writes to.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS meter;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS mart;

-- One row per landed file (a "batch"). A file loads exactly once: its sha256 is unique among
-- batches that did not fail. The row is written in the same transaction as the file's staged
-- rows, so a killed load leaves neither.
CREATE TABLE audit.load_batch (
    batch_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed            text        NOT NULL,
    file_name       text        NOT NULL,
    file_path       text        NOT NULL,
    sha256          char(64)    NOT NULL,
    size_bytes      bigint      NOT NULL,
    status          text        NOT NULL DEFAULT 'loading'
        CHECK (status IN ('loading', 'staged', 'validated', 'rejected', 'promoted', 'failed')),
    rows_read       bigint      NOT NULL DEFAULT 0,
    rows_staged     bigint      NOT NULL DEFAULT 0,
    rows_rejected   bigint      NOT NULL DEFAULT 0,
    rows_duplicate  bigint      NOT NULL DEFAULT 0,
    rows_promoted   bigint,
    rows_superseded bigint,
    rows_kept       bigint,
    raw_s3_key      text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    error           text,
    CONSTRAINT load_batch_accounting CHECK (
        status IN ('loading', 'failed')
        OR rows_read = rows_staged + rows_rejected + rows_duplicate)
);
CREATE UNIQUE INDEX load_batch_sha256_once ON audit.load_batch (sha256) WHERE status <> 'failed';
CREATE INDEX load_batch_status ON audit.load_batch (status);

-- Every input row that was not staged, with its raw values and a reason code
-- (meterflow.models.Reason).
-- row_no is the row a person sees in the file (1-based, header included; for NEM12 the line
-- of the 300 record); column names the meter column of a wide sheet, or the sheet.
CREATE TABLE audit.rejected_row (
    batch_id  bigint  NOT NULL REFERENCES audit.load_batch ON DELETE CASCADE,
    row_no    bigint  NOT NULL,
    location  text,
    meter_id  text,
    reason    text    NOT NULL,
    detail    text,
    raw       jsonb   NOT NULL
);
CREATE INDEX rejected_row_batch ON audit.rejected_row (batch_id, row_no);

CREATE TABLE audit.quality_result (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id               bigint      NOT NULL REFERENCES audit.load_batch ON DELETE CASCADE,
    suite                  text        NOT NULL,
    success                boolean     NOT NULL,
    expectations_evaluated integer     NOT NULL,
    expectations_failed    integer     NOT NULL,
    failures               jsonb       NOT NULL DEFAULT '[]',
    docs_path              text,
    started_at             timestamptz NOT NULL,
    finished_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_result_batch ON audit.quality_result (batch_id);

CREATE TABLE audit.archive_run (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text        NOT NULL,
    source      char(1),
    day         date,
    step        text        NOT NULL,
    rows        bigint,
    kwh_sum     numeric,
    s3_key      text,
    status      text        NOT NULL,
    detail      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archive_run_day ON audit.archive_run (source, day);

CREATE TABLE audit.delivery (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period_start  date        NOT NULL,
    period_end    date        NOT NULL,
    recipients    text        NOT NULL,
    content_hash  char(64)    NOT NULL,
    status        text        NOT NULL,
    message_id    text,
    detail        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);
CREATE UNIQUE INDEX delivery_once ON audit.delivery (period_start, period_end, recipients, content_hash)
    WHERE status = 'sent';

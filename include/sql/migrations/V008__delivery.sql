-- Delivery (meter_deliver): one audit.delivery row per attempt to email a period's deliverable.
--
-- status: 'sending' (claimed, handed to SMTP next), 'sent' (the SMTP server accepted it),
-- 'failed' (SMTP refused or was unreachable; nothing went out). The deliverable is identified
-- by (period_start, period_end, recipients, content_hash); a rerun of the same content to the
-- same people finds its 'sent' row and sends nothing. `force` sends again: send_no counts the
-- sends of one deliverable, so the unique index still allows only one 'sent' row per send_no.
ALTER TABLE audit.delivery
    ADD COLUMN send_no     integer NOT NULL DEFAULT 1,
    ADD COLUMN forced      boolean NOT NULL DEFAULT false,
    ADD COLUMN run_id      text,
    ADD COLUMN sources     text    NOT NULL DEFAULT 'ABC',
    ADD COLUMN formats     text,
    ADD COLUMN size_bytes  bigint,
    -- [{"name": ..., "bytes": ..., "how": "attached" | "link", "s3_key": ...}]
    ADD COLUMN attachments jsonb   NOT NULL DEFAULT '[]',
    ADD CONSTRAINT delivery_status CHECK (status IN ('sending', 'sent', 'failed')),
    ADD CONSTRAINT delivery_period CHECK (period_start <= period_end);

DROP INDEX audit.delivery_once;
CREATE UNIQUE INDEX delivery_once
    ON audit.delivery (period_start, period_end, recipients, content_hash, send_no)
    WHERE status = 'sent';
-- At most one send in flight per deliverable: two runs racing for it cannot both send.
CREATE UNIQUE INDEX delivery_in_flight
    ON audit.delivery (period_start, period_end, recipients, content_hash)
    WHERE status = 'sending';
CREATE INDEX delivery_period ON audit.delivery (period_start, period_end);

-- Nothing lost, nothing sent twice (issue 19).
--
-- Archive: a warehouse reading may leave only when the object read back from S3 holds it, value
-- for value, or holds a reading that beats it by the promotion rule (include/sql/segregate/
-- classify_source.sql: a higher quality rank, or the same rank and a newer batch). The
-- arguments are the warehouse reading's, then the archived one's (times as epoch microseconds,
-- as the Parquet stores them). NULL archived values (no archived reading of that key) give
-- false.
CREATE FUNCTION meter.archive_holds(
    kwh numeric, quality char, batch_id bigint, ingested_at timestamptz,
    a_kwh numeric, a_quality char, a_batch_id bigint, a_ingested_at_us bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((a_kwh, a_quality, a_batch_id, a_ingested_at_us)
                    = (kwh, quality, batch_id, meter.epoch_us(ingested_at))
                OR meter.quality_rank(a_quality) > meter.quality_rank(quality)
                OR (meter.quality_rank(a_quality) = meter.quality_rank(quality)
                    AND a_batch_id > batch_id), false);

-- Delivery: 'unknown' — the SMTP conversation broke after the message data was sent (a
-- timeout waiting for the server's answer, the connection dropped). The email may well have
-- gone out: the send is not repeated automatically (a rerun skips it, like a 'sent' one), an
-- alert asks a person to check the mailbox, and `force` sends again.
ALTER TABLE audit.delivery
    DROP CONSTRAINT delivery_status,
    ADD CONSTRAINT delivery_status CHECK (status IN ('sending', 'sent', 'failed', 'unknown'));

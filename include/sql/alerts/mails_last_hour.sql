-- Alert emails sent in the last hour (the hourly limit's count).
SELECT count(*) FROM audit.alert_mail WHERE sent_at > now() - interval '1 hour';

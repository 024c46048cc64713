"""The local stand-ins answer through the same Airflow connections the DAGs use: S3 through
S3Hook and aws_default's endpoint_url, SMTP through SmtpHook and smtp_default."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_alerts import wait_for_mail

pytestmark = pytest.mark.integration


def test_an_object_put_through_s3hook_reads_back_from_the_local_endpoint(bucket):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id="aws_default")
    key = f"stack-check/{uuid.uuid4().hex}.txt"
    hook.load_string("half-hourly kWh", key=key, bucket_name=bucket)
    assert hook.read_key(key, bucket_name=bucket) == "half-hourly kWh"
    assert hook.conn.meta.endpoint_url.startswith("http://127.0.0.1:")


def test_an_email_sent_through_smtphook_arrives_in_the_outbox(outbox):
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    subject = f"meterflow stack check {uuid.uuid4().hex[:8]}"
    with SmtpHook(smtp_conn_id="smtp_default") as hook:
        hook.send_email_smtp(to="bob@btl.com", subject=subject, html_content="<p>readings</p>")
    msg = wait_for_mail(outbox, subject)
    assert msg["To"] == "bob@btl.com"

"""The receiver over HTTP (in process): auth, limits, validation, acknowledgement, metrics."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from meterflow.stream.app import Settings, create_app

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"id": "SMR89134A", "timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5}


def packet(n: int) -> dict:
    return {**GOOD, "id": f"SMR{89134 + n:05d}{'ABC'[n % 3]}"}


def settings(tmp_path: Path, **kw) -> Settings:
    return Settings(landing_dir=tmp_path / "landing", open_dir=tmp_path / "open", token=TOKEN, **kw)


def closed_packets(tmp_path: Path) -> list[dict]:
    files = sorted((tmp_path / "landing" / "stream").glob("packets-*.jsonl"))
    return [json.loads(line) for p in files for line in p.read_text().splitlines()]


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings(tmp_path, max_body_bytes=4096))) as c:
        yield c


def metrics(client) -> dict:
    return client.get("/metrics").json()


def test_one_packet_or_an_array_is_acknowledged_and_lands_in_a_segment(client, tmp_path):
    assert client.post("/meter", json=GOOD, headers=AUTH).json() == {"accepted": 1}
    numeric = {**GOOD, "id": 999999999}
    r = client.post("/meter", json=[packet(1), numeric], headers=AUTH)
    assert (r.status_code, r.json()) == (200, {"accepted": 2})
    assert metrics(client)["current_segment"]["packets"] == 3
    client.__exit__(None, None, None)  # a clean stop closes the open segment
    assert closed_packets(tmp_path) == [GOOD, packet(1), numeric]


def test_an_acknowledged_packet_is_in_a_closed_segment_after_rotation(tmp_path):
    line_bytes = len(json.dumps(GOOD, separators=(",", ":"))) + 1
    app = create_app(settings(tmp_path, segment_bytes=2 * line_bytes))
    with TestClient(app) as client:
        sent = [packet(n) for n in range(6)]
        for p in sent:
            assert client.post("/meter", json=p, headers=AUTH).status_code == 200
        deadline = time.monotonic() + 5  # the writer closes a full segment just after the ack
        while metrics(client)["segments_closed"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert closed_packets(tmp_path) == sent  # three segments closed by size, none open
        assert list((tmp_path / "open").iterdir()) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
)
def test_no_or_a_wrong_token_is_401_and_stores_nothing(client, tmp_path, headers):
    r = client.post("/meter", json=GOOD, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert metrics(client)["rejected_requests"] == {"unauthorized": 1}
    assert metrics(client)["accepted_packets"] == 0


def test_the_bearer_scheme_is_case_insensitive(client):
    assert client.post("/meter", json=GOOD, headers={"Authorization": f"bearer {TOKEN}"}).is_success


def test_an_oversize_body_is_413_whether_its_length_is_declared_or_streamed(client):
    big = [GOOD] * 100  # ~7 kB over the 4 kB limit of the fixture
    assert client.post("/meter", json=big, headers=AUTH).status_code == 413

    def chunked():
        raw = json.dumps(big).encode()
        for i in range(0, len(raw), 1000):
            yield raw[i : i + 1000]

    assert client.post("/meter", content=chunked(), headers=AUTH).status_code == 413
    assert metrics(client)["rejected_requests"] == {"too_large": 2}
    assert metrics(client)["accepted_packets"] == 0


@pytest.mark.parametrize(
    ("bad", "loc"),
    [
        ({"id": "SMR89134A", "timestamp": "2025-02-08T00:31:00Z"}, ["body", "reading_kWh"]),
        ({**GOOD, "reading_kWh": "5.5"}, ["body", "reading_kWh"]),
        ({**GOOD, "id": ["SMR89134A"]}, ["body", "id"]),
        ({**GOOD, "timestamp": "08/02/2025 00:31"}, ["body", "timestamp"]),
        ({**GOOD, "timestamp": "2025-02-08T00:31:00"}, ["body", "timestamp"]),
        ({**GOOD, "timestamp": "2025-02-30T00:31:00Z"}, ["body", "timestamp"]),
        ({**GOOD, "timestamp": 1738975860}, ["body", "timestamp"]),
    ],
)
def test_a_bad_packet_is_422_naming_the_field_and_is_counted(client, tmp_path, bad, loc):
    r = client.post("/meter", json=bad, headers=AUTH)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [loc]
    m = metrics(client)
    assert (m["rejected_requests"], m["rejected_packets"], m["accepted_packets"]) == (
        {"invalid": 1},
        1,
        0,
    )
    client.__exit__(None, None, None)
    assert closed_packets(tmp_path) == []  # nothing of a refused request is stored


def test_an_array_with_bad_packets_is_refused_whole(client, tmp_path):
    r = client.post("/meter", json=[GOOD, {**GOOD, "id": 0}, {}], headers=AUTH)
    assert r.status_code == 422
    assert {tuple(e["loc"][:2]) for e in r.json()["detail"]} == {("body", 1), ("body", 2)}
    assert metrics(client)["rejected_packets"] == 2
    client.__exit__(None, None, None)
    assert closed_packets(tmp_path) == []


def test_a_body_that_is_not_json_is_422(client):
    r = client.post("/meter", content=b"id=1", headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_metrics_in_prometheus_format(client):
    client.post("/meter", json=GOOD, headers=AUTH)
    client.post("/meter", json=GOOD)
    text = client.get("/metrics", headers={"Accept": "text/plain"}).text
    assert "meterflow_stream_accepted_packets_total 1\n" in text
    assert 'meterflow_stream_rejected_requests_total{reason="unauthorized"} 1\n' in text
    assert 'meterflow_stream_open_segment_packets{segment="packets-' in text


def test_health_reports_a_failing_writer(client):
    assert client.get("/health").json() == {"status": "ok"}
    client.app.state.receiver.writer.broken = "disk gone"
    assert client.get("/health").status_code == 503
    r = client.post("/meter", json=GOOD, headers=AUTH)
    assert (r.status_code, r.headers["retry-after"]) == (503, "1")


def test_the_packet_schema_is_documented(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/meter"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][0]["required"] == ["id", "timestamp", "reading_kWh"]


def test_a_segment_that_cannot_be_closed_makes_the_receiver_unhealthy_and_answers_503(tmp_path):
    # The landing folder vanishes (an unmounted disk): closing the segment by rename fails.
    # Before, the writer thread died, /health said 200 and every POST waited for ever.
    import shutil

    line_bytes = len(json.dumps(GOOD, separators=(",", ":"))) + 1
    with TestClient(create_app(settings(tmp_path, segment_bytes=line_bytes))) as client:
        shutil.rmtree(tmp_path / "landing")
        assert client.post("/meter", json=GOOD, headers=AUTH).status_code == 200  # on disk
        deadline = time.monotonic() + 5
        while client.get("/health").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.02)

        health = client.get("/health")
        started = time.monotonic()
        answer = client.post("/meter", json=packet(1), headers=AUTH)
        answered_in = time.monotonic() - started

    assert health.status_code == 503
    assert "the segment writer stopped: FileNotFoundError" in health.json()["detail"]
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
    assert answered_in < 2  # an answer, not a hang
    kept = list((tmp_path / "open").glob("packets-*"))  # the acknowledged packet, on disk
    assert [json.loads(line) for p in kept for line in p.read_text().splitlines()] == [GOOD]


@pytest.mark.parametrize("token", ["", "   ", "short"])
def test_an_empty_or_short_token_refuses_to_start(tmp_path, token):
    with pytest.raises(ValueError, match="stream token is empty or shorter than 16"):
        create_app(
            Settings(landing_dir=tmp_path / "landing", open_dir=tmp_path / "open", token=token)
        )


def test_a_body_that_does_not_arrive_in_time_is_408_and_stores_nothing(tmp_path):
    import asyncio

    from meterflow.stream.app import Receiver

    receiver = Receiver(settings(tmp_path, read_timeout=0.2))

    async def slow_client():
        yield b'{"id": "SMR89134A",'
        await asyncio.sleep(5)  # a slow-loris client holding the connection
        yield b'"timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5}'

    status, body, _ = asyncio.run(receiver.post_meter(f"Bearer {TOKEN}", None, slow_client()))

    assert status == 408
    assert "not received within 0.2 s" in json.loads(body)["detail"]
    assert receiver.metrics()["rejected_requests"] == {"timeout": 1}

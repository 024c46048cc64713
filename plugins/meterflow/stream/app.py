"""The receiver: a FastAPI app taking meter packets over HTTP into durable segments.

- ``POST /meter``: one packet or an array, ``Authorization: Bearer <token>``. Answers 200
  ``{"accepted": n}`` only after the packets are written and fsync'ed (see segments.py); 401
  without the right token, 413 for a body over the limit, 422 with the field errors (nothing of
  that request is stored), 503 when the disk refuses (nothing stored; retry).
- ``GET /health``: 200 while the segment writer works, else 503.
- ``GET /metrics``: counters and the open segment, as JSON, or in Prometheus' text format
  when the client asks for ``text/plain`` (as Prometheus does).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from meterflow import config
from meterflow.stream.packets import Packet, errors, parse, to_lines
from meterflow.stream.segments import SegmentWriter, WriterUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    open_dir: Path
    token: str
    max_body_bytes: int = 1 << 20
    segment_bytes: int = 64 << 20
    segment_seconds: float = 300.0
    fsync: bool = True  # off only for the benchmark's upper bound
    max_group: int = 0  # 1 = an fsync per request (the benchmark's baseline)
    read_timeout: float = 10.0  # seconds for a request's body to arrive (slow clients)

    @classmethod
    def from_config(cls, **overrides) -> Settings:
        values = {
            "landing_dir": Path(config.get("landing_dir")),
            "open_dir": Path(config.get("stream_open_dir")),
            "token": resolve_token(),
            "max_body_bytes": int(config.get("stream_max_body_kb") * 1024),
            "segment_bytes": int(config.get("stream_segment_mb") * (1 << 20)),
            "segment_seconds": float(config.get("stream_segment_seconds")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def token_file() -> Path:
    return Path(config.get("var")) / "stream" / "token"


def resolve_token(create: bool = True) -> str:
    """The bearer token: MF_STREAM_TOKEN, else ``<var>/stream/token`` (made once, mode 0600).

    The file lets the local receiver and simulator agree on a secret without one in git.
    """
    token = config.get("stream_token")
    if token:
        return token
    path = token_file()
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise RuntimeError(f"no stream token: set MF_STREAM_TOKEN or start the receiver ({path})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    log.warning("no MF_STREAM_TOKEN set: generated a token into %s", path)
    return path.read_text().strip()


_PACKET_SCHEMA = Packet.model_json_schema()
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_PACKET_SCHEMA, {"type": "array", "items": _PACKET_SCHEMA}]},
                "example": {
                    "id": "SMR89134A",
                    "timestamp": "2025-02-08T00:31:00Z",
                    "reading_kWh": 5.5,
                },
            }
        },
    }
}
Headers = tuple[tuple[str, str], ...]
Answer = tuple[int, bytes, Headers]
_BEARER: Headers = (("WWW-Authenticate", 'Bearer realm="meterflow"'),)
_RETRY: Headers = (("Retry-After", "1"),)


MIN_TOKEN_CHARS = 16


class Receiver:
    """The state behind the routes: settings, the segment writer and the rejection counters."""

    def __init__(self, settings: Settings) -> None:
        if len(settings.token.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"the stream token is empty or shorter than {MIN_TOKEN_CHARS} characters: set "
                f"MF_STREAM_TOKEN, or delete {token_file()} to have one generated"
            )
        self.settings = settings
        self.writer = SegmentWriter(
            settings.landing_dir,
            settings.open_dir,
            max_bytes=settings.segment_bytes,
            max_age=settings.segment_seconds,
            fsync=settings.fsync,
            max_group=settings.max_group,
        )
        self.rejected: Counter[str] = Counter()
        self.rejected_packets = 0
        self._expected = f"Bearer {settings.token}".encode()

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        given = f"{scheme.capitalize()} {token.strip()}".encode()
        return hmac.compare_digest(given, self._expected)

    async def append(self, data: bytes, packets: int) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def settle(exc: BaseException | None) -> None:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

        self.writer.submit(data, packets, lambda exc: loop.call_soon_threadsafe(settle, exc))
        await waiter

    def reject(
        self, reason: str, status: int, detail: object, packets: int = 1, headers: Headers = ()
    ) -> Answer:
        self.rejected[reason] += 1
        self.rejected_packets += packets
        return status, json.dumps({"detail": detail}).encode(), headers

    async def post_meter(
        self, auth: str | None, length: str | None, chunks: AsyncIterator[bytes]
    ) -> Answer:
        """Check, parse and store one request; (status, JSON body, extra headers)."""
        if not self.authorized(auth):
            return self.reject("unauthorized", 401, "missing or wrong bearer token", 1, _BEARER)
        limit = self.settings.max_body_bytes
        try:
            body = await asyncio.wait_for(
                _read_limited(length, chunks, limit), self.settings.read_timeout
            )
        except TimeoutError:
            return self.reject(
                "timeout", 408, f"request body not received within {self.settings.read_timeout} s"
            )
        if body is None:
            return self.reject("too_large", 413, f"request body over the limit of {limit:,} bytes")
        try:
            packets = parse(body)
        except ValidationError as exc:
            details = errors(exc)
            bad = {
                d["loc"][1] for d in details if len(d["loc"]) > 2 and isinstance(d["loc"][1], int)
            }
            return self.reject("invalid", 422, details, max(1, len(bad)))
        try:
            await self.append(to_lines(packets), len(packets))
        except WriterUnavailable as exc:
            return self.reject("unavailable", 503, str(exc), len(packets), _RETRY)
        return 200, b'{"accepted":%d}' % len(packets), ()

    def metrics(self) -> dict:
        return {
            **self.writer.status(),
            "rejected_requests": dict(self.rejected),
            "rejected_packets": self.rejected_packets,
        }


async def _read_limited(
    length: str | None, chunks: AsyncIterator[bytes], limit: int
) -> bytes | None:
    """The body, or None as soon as it is known to be longer than ``limit`` bytes."""
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(settings: Settings | None = None) -> MeterRoute:
    """The receiver app; settings default to meterflow.config (env MF_STREAM_*)."""
    receiver = Receiver(settings or Settings.from_config())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        recovered = receiver.writer.start()
        s = receiver.settings
        log.info(
            "stream receiver: segments to %s (open ones in %s), %d recovered at start",
            receiver.writer.out_dir,
            s.open_dir,
            len(recovered),
        )
        try:
            yield
        finally:
            await asyncio.to_thread(receiver.writer.stop)

    app = FastAPI(
        title="meterflow stream receiver",
        summary="Takes live meter packets and lands them as durable .jsonl segments",
        lifespan=lifespan,
    )
    app.state.receiver = receiver

    @app.post("/meter", openapi_extra=_BODY_DOC)
    async def post_meter(request: Request) -> Response:
        """Store one packet or an array of packets; 200 means they are on disk.

        Served by ``MeterRoute`` below without FastAPI's request machinery (it costs more than
        the fsync); this route documents it in /docs and serves the same answer if reached.
        """
        status, body, headers = await receiver.post_meter(
            request.headers.get("authorization"),
            request.headers.get("content-length"),
            request.stream(),
        )
        return Response(body, status, dict(headers), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        """200 while packets can be stored; 503 otherwise."""
        writer = receiver.writer
        if writer.broken:
            return JSONResponse({"status": "failing", "detail": writer.broken}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Counters: accepted, rejected (by reason), commits, segments; the open segment."""
        data = receiver.metrics()
        accept = request.headers.get("accept", "")
        if "text/plain" in accept or "openmetrics" in accept:
            return PlainTextResponse(prometheus(data), media_type="text/plain; version=0.0.4")
        return JSONResponse(data)

    return MeterRoute(app, receiver)


class MeterRoute:
    """ASGI front: ``POST /meter`` straight to the receiver; everything else to FastAPI."""

    def __init__(self, app: FastAPI, receiver: Receiver) -> None:
        self.app = app
        self.receiver = receiver
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/meter" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        auth = length = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value.decode("latin-1")
            elif key == b"content-length":
                length = value.decode("latin-1")

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        status, body, headers = await self.receiver.post_meter(auth, length, chunks())
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


def prometheus(data: dict) -> str:
    """The metrics in Prometheus' text exposition format."""
    out = [
        "# TYPE meterflow_stream_accepted_packets_total counter",
        f"meterflow_stream_accepted_packets_total {data['accepted_packets']}",
        "# TYPE meterflow_stream_accepted_requests_total counter",
        f"meterflow_stream_accepted_requests_total {data['accepted_requests']}",
        "# TYPE meterflow_stream_rejected_packets_total counter",
        f"meterflow_stream_rejected_packets_total {data['rejected_packets']}",
        "# TYPE meterflow_stream_rejected_requests_total counter",
    ]
    for reason, n in sorted(data["rejected_requests"].items()):
        out.append(f'meterflow_stream_rejected_requests_total{{reason="{reason}"}} {n}')
    for key in ("commits", "segments_closed", "segments_recovered", "write_errors"):
        out += [
            f"# TYPE meterflow_stream_{key}_total counter",
            f"meterflow_stream_{key}_total {data[key]}",
        ]
    seg = data["current_segment"] or {"name": "", "packets": 0, "bytes": 0}
    out += [
        "# TYPE meterflow_stream_open_segment_packets gauge",
        f"meterflow_stream_open_segment_packets{{segment={json.dumps(seg['name'])}}} "
        f"{seg['packets']}",
        "# TYPE meterflow_stream_open_segment_bytes gauge",
        f"meterflow_stream_open_segment_bytes {seg['bytes']}",
        "# TYPE meterflow_stream_up gauge",
        f"meterflow_stream_up {0 if data['broken'] else 1}",
    ]
    return "\n".join(out) + "\n"

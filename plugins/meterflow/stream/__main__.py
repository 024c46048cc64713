"""Run the stream receiver: ``python -m meterflow.stream [--host H] [--port P]``.

Settings come from meterflow.config (``MF_STREAM_*``, ``MF_LANDING_DIR``); flags override the
address. One process is the supported layout (the writer thread batches fsyncs across all its
requests); put a reverse proxy with TLS in front of it (docs/stream.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from meterflow import config
from meterflow.stream.app import Settings, create_app


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop by SIGTERM/SIGINT that completed ends with status 0.

    uvicorn >= 0.29 re-raises the signal once its graceful shutdown is done, so the process
    ends "killed by SIGTERM" (-15, 143 in Docker) even after every segment was closed. SIGTERM
    is how this service is meant to be stopped (docker, systemd, ``make``), so a clean stop
    exits 0 and a non-zero status keeps meaning that something went wrong.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meterflow.stream", description=__doc__)
    parser.add_argument("--host", default=None, help="listen address (MF_STREAM_HOST)")
    parser.add_argument("--port", type=int, default=None, help="listen port (MF_STREAM_PORT)")
    parser.add_argument(
        "--max-group",
        type=int,
        default=0,
        help="at most this many requests per fsync (1 = no group commit; benchmark baseline)",
    )
    parser.add_argument(
        "--unsafe-no-fsync",
        action="store_true",
        help="benchmark only: acknowledge before the disk has the data (loses it on power cut)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_config(
        fsync=not args.unsafe_no_fsync, max_group=args.max_group or None
    )
    app = create_app(settings)
    server = _Server(
        uvicorn.Config(
            app,
            host=args.host or config.get("stream_host"),
            port=args.port or config.get("stream_port"),
            log_level=args.log_level,
            access_log=False,  # one line per request would cost more than the fsync
            backlog=2048,
            limit_concurrency=config.get("stream_max_connections"),  # 503 above it
            timeout_keep_alive=5,  # an idle connection is closed
            timeout_graceful_shutdown=10,
        )
    )
    server.run()
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())

"""A Sentry ingest stand-in on 127.0.0.1: it accepts envelopes (gzip or plain) and keeps every
cron check-in item, for tests that run the real sentry-sdk against it."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SentryRecorder:
    """The check-ins received, in order; ``dsn`` points sentry-sdk here."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.check_ins: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.check_ins)

    def keep(self, body: bytes) -> None:
        lines = body.split(b"\n")
        items = []
        index = 1  # line 0 is the envelope header
        while index + 1 < len(lines):
            header = json.loads(lines[index])
            payload = lines[index + 1]
            index += 2
            if header.get("type") == "check_in":
                items.append(json.loads(payload))
        with self._lock:
            self.check_ins.extend(items)


@contextmanager
def sentry_recorder() -> Iterator[SentryRecorder]:
    """A recorder serving on a free loopback port until the block ends."""
    recorder: SentryRecorder

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            recorder.keep(body)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder = SentryRecorder(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()

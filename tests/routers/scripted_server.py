"""An HTTP server that answers from a script, for the AWS answers moto never gives (throttling,
HTTP 5xx, a damaged body, an error in XML, a connection closed after an answer) and for a
container credentials endpoint.

It is a real server on a loopback port (HTTP/1.1, keep-alive), run in a daemon thread of the
test process; it records every request it receives and every connection it accepts.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # close the connection after answering, without saying so


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    connection: int  # which accepted connection it came on, from 1


class ScriptedServer:
    """``with ScriptedServer() as server: server.script(Answer(...)); ... server.url``."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.received: list[Received] = []
        self.connections = 0
        self.closed = 0  # connections this server has closed
        self._closing = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                outer.connections += 1
                self.connection_number = outer.connections

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(Received(dict(self.headers), body, self.connection_number))
                answer = outer.answers.popleft() if outer.answers else Answer(500, b"unscripted")
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
                if answer.close:
                    self.close_connection = True

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def shutdown_request(self, request: object) -> None:
                super().shutdown_request(request)
                with outer._closing:
                    outer.closed += 1
                    outer._closing.notify_all()

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_closed(self, count: int, timeout_seconds: float = 10.0) -> None:
        """Wait until this server has closed ``count`` connections."""
        with self._closing:
            if not self._closing.wait_for(lambda: self.closed >= count, timeout_seconds):
                raise AssertionError(f"the server closed {self.closed} connection(s), not {count}")

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

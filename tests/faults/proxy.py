"""A TCP proxy a test controls, between a client (beat, the CLI) and a store (moto, redis-server).

Faults, switched at any moment with :meth:`FaultProxy.set`:

- ``PASS``: bytes flow both ways.
- ``PARTITION``: nothing flows either way, on open connections and new ones (new connections are
  accepted but left silent, as SYNs answered by a host whose replies are then lost). Bytes sent
  meanwhile are held, as TCP retransmits them: when the partition heals, what a client sent is
  delivered to the store even if the client has given up and closed (so a request can be applied
  after its sender timed out), and what the store answered is delivered only to clients still
  connected.
- ``REFUSE``: open connections are reset and new ones closed at once.
- ``DROP_RESPONSES``: requests reach the store; each answer is lost with probability
  ``fraction`` (the connection then stays silent until the client closes it): the write happened,
  its sender cannot know.
- ``DELAY``: every answer is held back ``delay_seconds``.

The proxy runs in daemon threads of the test process and listens on a free loopback port.
"""

from __future__ import annotations

import contextlib
import enum
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field


class Fault(enum.Enum):
    PASS = "pass"
    PARTITION = "partition"
    REFUSE = "refuse"
    DROP_RESPONSES = "drop-responses"
    DELAY = "delay"


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    to_upstream: bytearray = field(default_factory=bytearray)
    to_client: list[tuple[float, bytes]] = field(default_factory=list)
    client_closed: bool = False
    swallowing: bool = False
    closing_at: float | None = None  # client gone, its requests delivered: drop the pair then


class FaultProxy:
    """``with FaultProxy(port) as proxy: url = f"redis://127.0.0.1:{proxy.port}/0"``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", *, seed: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._fault = Fault.PASS
        self._fraction = 0.0
        self._delay = 0.0
        self._random = random.Random(seed)
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._stopping = False
        self.dropped_answers = 0
        self._threads = [
            threading.Thread(target=self._accept, name="fault-proxy-accept", daemon=True),
            threading.Thread(target=self._pump, name="fault-proxy-pump", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def set(self, fault: Fault, *, fraction: float = 0.0, delay_seconds: float = 0.0) -> None:
        with self._lock:
            self._fault, self._fraction, self._delay = fault, fraction, delay_seconds
            if fault is Fault.REFUSE:
                for pair in self._pairs:
                    _reset(pair.client)
                    pair.upstream.close()
                self._pairs.clear()

    def retarget(self, port: int, host: str = "127.0.0.1") -> None:
        """Send new connections to ``host:port`` and reset the open ones, as a failover moves a
        service address to another server."""
        with self._lock:
            self.upstream = (host, port)
            for pair in self._pairs:
                _reset(pair.client)
                pair.upstream.close()
            self._pairs.clear()

    def close(self) -> None:
        self._stopping = True
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                pair.client.close()
                pair.upstream.close()
            self._pairs.clear()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._fault is Fault.REFUSE:
                    _reset(client)
                    continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(5)  # reads happen only when select says ready; sends are small
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append(_Pair(client, upstream))

    def _pump(self) -> None:
        while not self._stopping:
            with self._lock:
                pairs = list(self._pairs)
            readable = [p.client for p in pairs if not p.client_closed]
            readable += [p.upstream for p in pairs]
            if not readable:
                time.sleep(0.005)
                continue
            try:
                ready, _, _ = select.select(readable, [], [], 0.005)
            except (OSError, ValueError):
                continue
            with self._lock:
                for pair in list(self._pairs):
                    self._move(pair, ready)

    def _move(self, pair: _Pair, ready: list[socket.socket]) -> None:
        """Read what is ready, then send what the current fault lets through. Holds _lock."""
        partitioned = self._fault is Fault.PARTITION
        if pair.client in ready:
            data = _recv(pair.client)
            if data:
                pair.to_upstream += data
            else:
                pair.client_closed = True
        if pair.upstream in ready:
            data = _recv(pair.upstream)
            if not data:
                self._drop(pair)
                return
            if self._fault is Fault.DROP_RESPONSES and not pair.swallowing:
                pair.swallowing = self._random.random() < self._fraction
                self.dropped_answers += pair.swallowing
            if not pair.swallowing:
                delay = self._delay if self._fault is Fault.DELAY else 0.0
                pair.to_client.append((time.monotonic() + delay, data))
        if partitioned:
            return
        try:
            if pair.to_upstream:
                pair.upstream.sendall(pair.to_upstream)
                pair.to_upstream.clear()
            now = time.monotonic()
            while pair.to_client and pair.to_client[0][0] <= now and not pair.client_closed:
                pair.client.sendall(pair.to_client.pop(0)[1])
        except OSError:
            self._drop(pair)
            return
        if pair.client_closed and not pair.to_upstream:
            # Its requests are delivered; the store gets a moment to act on the last one.
            pair.closing_at = pair.closing_at or time.monotonic() + 1.0
            if time.monotonic() >= pair.closing_at:
                self._drop(pair)

    def _drop(self, pair: _Pair) -> None:
        pair.client.close()
        pair.upstream.close()
        if pair in self._pairs:
            self._pairs.remove(pair)


def _recv(sock: socket.socket) -> bytes:
    """What a ready socket holds; b"" once it is closed or broken."""
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a refusing host does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()

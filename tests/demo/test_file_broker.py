"""The demo's broker: kombu's filesystem transport with atomic message files. A producer in
another process publishes as fast as it can while this process consumes: every message arrives
whole and once (kombu's own transport lets a consumer read a file before it is written)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import kombu

TRANSPORT = "beat_handover.handover.demo.file_broker:Transport"
PRODUCE = """
import sys, kombu
options = {{"data_folder_in": {q!r}, "data_folder_out": {q!r}, "control_folder": {c!r}}}
with kombu.Connection("filesystem://", transport={t!r}, transport_options=options) as conn:
    queue = kombu.Queue("work", routing_key="work")
    producer = conn.Producer()
    for n in range({n}):
        producer.publish({{"n": n, "pad": "x" * 4000}}, exchange=queue.exchange,
                         routing_key="work", declare=[queue])
"""


def test_every_message_arrives_whole_and_once_while_being_written(tmp_path: Path):
    folders = {name: tmp_path / name for name in ("messages", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    count = 2000
    producer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PRODUCE.format(
                q=str(folders["messages"]), c=str(folders["control"]), t=TRANSPORT, n=count
            ),
        ]
    )
    options = {
        "data_folder_in": str(folders["messages"]),
        "data_folder_out": str(folders["messages"]),
        "store_processed": True,
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "polling_interval": 0.001,
    }
    received: list[int] = []
    with kombu.Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
        queue = kombu.Queue("work", routing_key="work")

        def take(body: dict, message: kombu.Message) -> None:
            received.append(body["n"])
            message.ack()

        with conn.Consumer([queue], callbacks=[take]):
            deadline = time.monotonic() + 60
            while len(received) < count and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.5)
    assert producer.wait(timeout=30) == 0
    assert sorted(received) == list(range(count))
    assert list(folders["messages"].iterdir()) == []

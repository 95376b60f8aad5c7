"""kombu's ``filesystem://`` transport with message files that appear whole: the demo's broker.

kombu 5.7 writes a message by creating ``<time>_<uuid>.<queue>.msg`` and then writing into it, so
a consumer polling the folder can take the file while it is still empty and fail to decode it
(``JSONDecodeError: Expecting value``; kombu issue #1551). Two local processes (a beat and a
worker) hit that within seconds at a few messages per second under load. Here each message is
written to a hidden name that no queue matches and renamed into place, which is atomic on one
file system, so a consumer sees either nothing or the whole message.

Use it as ``Celery(broker="filesystem://")`` with
``broker_transport="beat_handover.handover.demo.file_broker:Transport"`` and the usual folder
options.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """Put ``payload`` on ``queue``: write a hidden file, then rename it to its queue name."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(hidden, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(hidden, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

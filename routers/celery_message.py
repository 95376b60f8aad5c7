"""A Celery task message (protocol 2) in the envelope kombu's SQS transport reads, without Celery.

What ``app.send_task(name, args, queue=Q)`` puts on an SQS queue (celery/app/amqp.py
``as_task_v2``, kombu/transport/virtual ``Channel.prepare_message`` and kombu/transport/SQS
``Channel._put``):

    SQS MessageBody = base64(json({
        "body": base64(json([args, kwargs, {"callbacks", "errbacks", "chain", "chord"}])),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": NAME, "id": ID, "root_id": ID, "argsrepr": ..., ...},
        "properties": {"correlation_id": ID, "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": Q},
                       "delivery_tag": UUID, "delivery_mode": 2, "priority": 0, ...}}))

kombu reads it back in ``Channel._message_to_python``; the test suite checks it against a real
``celery worker``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

ARGSREPR_MAX = 1024  # celery's default argsrepr_maxsize


def _repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= ARGSREPR_MAX else text[: ARGSREPR_MAX - 3] + "..."


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def task_message_body(
    *,
    task_name: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    queue_name: str,
    origin: str,
) -> str:
    """The SQS MessageBody of one Celery task, as ``send_task(..., queue=queue_name)`` sends it."""
    body = json.dumps(
        [
            list(args),
            dict(kwargs),
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
        ]
    )
    message = {
        "body": _b64(body),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task_name,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": _repr(list(args)),
            "kwargsrepr": _repr(dict(kwargs)),
            "origin": origin,
            "ignore_result": False,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue_name},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return _b64(json.dumps(message))

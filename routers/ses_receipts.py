"""SES notifications via SNS -> a Celery task on the old or new environment's SQS queue.

Subscribe the function to the SNS topic SES publishes to. For each SNS record it decides a side,
sticky by the SES message id (``mail.messageId``), and sends a Celery protocol 2 task message
(``task_name``, default ``process-ses-result``, with one argument ``{"Message": <the SNS
Message text, unchanged>}``) to that side's queue, in the envelope kombu's SQS transport reads.

The task id is derived from the SNS MessageId (uuid5), so a retried event sends the same task
id again and a task that must not run twice can recognise the repeat.

A record it cannot parse, or cannot send (or whose stored copy SQS reports with another MD5), is
never dropped: the other records are sent first, then the handler raises UnprocessableEvent
naming each failed record, so Lambda retries the event (and after its retries hands it to the
function's on-failure destination or DLQ). SNS delivers one record per invocation, so a retry
repeats no other record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from beat_handover.routers.aws_client import AwsClient
from beat_handover.routers.celery_message import task_message_body
from beat_handover.routers.config import (
    SesReceiptsConfig,
    open_switch,
    packaged_handler,
    parse_config,
)
from beat_handover.routers.emf import Emit, print_line
from beat_handover.routers.errors import AwsCallFailed, UnprocessableEvent
from beat_handover.routers.route_format import QueueSide
from beat_handover.routers.switch import Switch

logger = logging.getLogger(__name__)

TASK_ID_NAMESPACE = uuid.UUID("5b0d7a4e-5d1c-4c59-9b8e-3f3c1f0e2a61")
SQS_CONNECT_TIMEOUT_SECONDS = 5
SQS_READ_TIMEOUT_SECONDS = 10
SQS_ATTEMPTS = 3


@dataclass(frozen=True)
class SesRecord:
    """The parts of one SNS record the router needs."""

    sns_message_id: str
    ses_message_id: str
    message: str  # the SNS Message text (SES's JSON notification), passed on unchanged


def parse_record(record: Any) -> SesRecord:
    """One SNS record carrying an SES notification, else ValueError saying what is wrong."""
    if not isinstance(record, Mapping) or record.get("EventSource") != "aws:sns":
        raise ValueError("not an SNS record (EventSource is not aws:sns)")
    sns = record.get("Sns")
    if not isinstance(sns, Mapping):
        raise ValueError("has no Sns object")
    sns_id, message = sns.get("MessageId"), sns.get("Message")
    if not isinstance(sns_id, str) or not sns_id:
        raise ValueError("Sns.MessageId is missing")
    if not isinstance(message, str):
        raise ValueError("Sns.Message is not text")
    try:
        notification = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Sns.Message is not JSON ({exc})") from None
    mail = notification.get("mail") if isinstance(notification, dict) else None
    ses_id = mail.get("messageId") if isinstance(mail, dict) else None
    if not isinstance(ses_id, str) or not ses_id:
        raise ValueError("Sns.Message has no mail.messageId, so it is not an SES notification")
    return SesRecord(sns_id, ses_id, message)


class SesReceiptsRouter:
    """The SNS-triggered handler: ``router(event, context)`` queues one task per record."""

    def __init__(self, config: SesReceiptsConfig, switch: Switch, sqs: AwsClient) -> None:
        self.config = config
        self.switch = switch
        self.sqs = sqs
        self.origin = f"ses_receipts@{socket.gethostname()}"

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list) or not records:
            raise UnprocessableEvent(
                "expected an SNS event with a non-empty Records list; subscribe this function "
                f"to the SNS topic SES notifies; got {str(event)[:300]}"
            )
        queued, failed = [], []
        for index, raw in enumerate(records):
            try:
                queued.append(self._route(raw))
            except ValueError as exc:
                failed.append(f"record {index} ({_describe(raw)}): {exc}")
                logger.error(
                    "route=%s record=%s (%s) not queued: %s",
                    self.config.route,
                    index,
                    _describe(raw),
                    exc,
                )
        self.switch.flush()
        if failed:
            raise UnprocessableEvent(
                f"{len(failed)} of {len(records)} SNS record(s) were not queued (the other "
                f"{len(queued)} were); Lambda will retry the event: {'; '.join(failed)}"
            )
        return {"queued": queued}

    def _route(self, raw: Any) -> dict[str, str]:
        record = parse_record(raw)
        decision = self.switch.decide(record.ses_message_id)
        queue = decision.target
        if not isinstance(queue, QueueSide):
            raise ValueError(f"route {self.config.route!r} gave no queue ({decision})")
        task_id = str(uuid.uuid5(TASK_ID_NAMESPACE, record.sns_message_id))
        body = task_message_body(
            task_name=self.config.task_name,
            task_id=task_id,
            args=[{"Message": record.message}],
            kwargs={},
            queue_name=queue.queue_name,
            origin=self.origin,
        )
        try:
            answer = self.sqs.call(
                "SendMessage", {"QueueUrl": queue.queue_url, "MessageBody": body}
            )
        except AwsCallFailed as exc:
            raise ValueError(f"sending to {queue.queue_url} failed: {exc}") from None
        stored_md5 = answer.get("MD5OfMessageBody")
        if stored_md5 != hashlib.md5(body.encode(), usedforsecurity=False).hexdigest():
            raise ValueError(
                f"sending to {queue.queue_url}: SQS stored a body whose MD5 is {stored_md5!r}, "
                "not that of the message sent, so the queued copy may be damaged"
            )
        logger.info(
            "route=%s ses_message_id=%s side=%s queue=%s task_id=%s queued",
            self.config.route,
            record.ses_message_id,
            decision.label,
            queue.queue_name,
            task_id,
        )
        return {
            "sns_message_id": record.sns_message_id,
            "ses_message_id": record.ses_message_id,
            "side": decision.label,
            "queue_url": queue.queue_url,
            "task_id": task_id,
        }


def _describe(raw: Any) -> str:
    sns = raw.get("Sns") if isinstance(raw, Mapping) else None
    message_id = sns.get("MessageId") if isinstance(sns, Mapping) else None
    return f"SNS MessageId {message_id}" if message_id else "no SNS MessageId"


def make_handler(
    config: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    emit: Emit = print_line,
) -> SesReceiptsRouter:
    """An SNS-triggered handler from a config dict (keys:
    beat_handover.routers.config.SES_RECEIPTS_KEYS). Queues are reached in the config's region."""
    parsed = parse_config(SesReceiptsConfig, config)
    sqs = AwsClient(
        "sqs",
        parsed.region,
        endpoint_url=parsed.endpoint_url,
        connect_timeout_seconds=SQS_CONNECT_TIMEOUT_SECONDS,
        read_timeout_seconds=SQS_READ_TIMEOUT_SECONDS,
        attempts=SQS_ATTEMPTS,
    )
    return SesReceiptsRouter(parsed, open_switch(parsed, clock=clock, rng=rng, emit=emit), sqs)


handler = packaged_handler(make_handler)

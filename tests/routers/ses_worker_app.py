"""The Celery app of the SES-receipt worker test: a ``process-ses-result`` task that appends
what it got to the file named by SES_RESULT_FILE, consuming SQS on the moto server.

kombu's SQS transport polls through pycurl when the worker runs its event loop; pycurl is not a
dependency of this project, so the worker uses the transport's blocking boto3 path instead (the
message decoding, ``Channel._message_to_python``, is the same on both paths).
"""

from __future__ import annotations

import json
import os

from celery import Celery
from kombu.transport.SQS import Transport


class BlockingSQSTransport(Transport):
    implements = Transport.implements.extend(asynchronous=False)


app = Celery("ses_worker_app", broker="sqs://")
app.conf.broker_transport = f"{__name__}:BlockingSQSTransport"
app.conf.broker_transport_options = {
    "region": os.environ.get("AWS_REGION", "eu-west-2"),
    "wait_time_seconds": 1,
    "polling_interval": 0.2,
    "visibility_timeout": 30,
}
app.conf.worker_hijack_root_logger = False


@app.task(name="process-ses-result")
def process_ses_result(notification: dict) -> None:
    with open(os.environ["SES_RESULT_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(notification) + "\n")

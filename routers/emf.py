"""CloudWatch Embedded Metric Format: one JSON log line that CloudWatch turns into metrics.

A Lambda function's stdout goes to CloudWatch Logs line by line; a line that is an EMF object
becomes metric data points with no agent or API call. Lambda@Edge writes its logs (and so its
metrics) in the region where each request ran, under ``/aws/lambda/us-east-1.FUNCTION``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

Emit = Callable[[str], None]


def emf_line(
    namespace: str,
    dimensions: Mapping[str, str],
    metrics: Mapping[str, tuple[float, str]],
    properties: Mapping[str, Any],
    *,
    timestamp_ms: int | None = None,
) -> str:
    """One EMF log line: ``metrics`` maps a name to (value, unit); ``properties`` are searchable
    fields that are not metrics."""
    record: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [
                        {"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()
                    ],
                }
            ],
        },
        **properties,
        **dimensions,
        **{name: value for name, (value, _) in metrics.items()},
    }
    return json.dumps(record, separators=(",", ":"), default=str)


def print_line(line: str) -> None:
    """Write one log line to stdout, where the Lambda runtime collects it as one log event."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

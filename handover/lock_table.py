"""``handover init``: create the DynamoDB lock table once, and work out the IAM policies for it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.beat_lock.errors import ConfigError
from beat_handover.handover.iam import policies
from beat_handover.scheduler.settings import BeatLockSettings

ACCOUNT_ID = re.compile(r"^\d{12}$")


def init_table(
    settings: BeatLockSettings, *, account_id: str | None, say: Callable[[str], None]
) -> dict[str, Any] | None:
    """Create the table the lock URL names (if missing) and return the policies for it; None
    for a Redis store, which has no table and no IAM."""
    location = settings.require_location()
    if location.backend != "dynamodb":
        say(f"{location.describe()} needs no table and no IAM policy: nothing to create.")
        return None
    if account_id is not None and not ACCOUNT_ID.match(account_id):
        raise ConfigError(f"--account-id must be 12 digits, got {account_id!r}")
    region = location.region or boto3.session.Session().region_name
    if region is None:
        raise ConfigError(
            f"no AWS region for {location.url!r}: add ?region=REGION to the lock URL "
            "(e.g. dynamodb://beat-lock?region=eu-west-2) or set AWS_REGION"
        )
    created = create_table(location.table, region)
    say(f"table {location.table} in {region}: {'created' if created else 'already exists'}")
    account = account_id if account_id is not None else _caller_account(region)
    return policies(location.table, region=region, account_id=account, lock_name=settings.name)


def _caller_account(region: str) -> str:
    try:
        return boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(
            f"cannot tell which AWS account this is ({exc}); pass --account-id ACCOUNT"
        ) from None

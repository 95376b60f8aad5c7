"""CloudWatch alarm states, as a rollout watches them: one ``DescribeAlarms`` per look, metric
and composite alarms alike, through boto3 (the endpoint and credentials as every other AWS
client of the toolkit finds them, ``AWS_ENDPOINT_URL`` included)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from beat_handover.beat_lock.errors import ConfigError, StoreUnavailable

ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
OK = "OK"
NAMES_PER_CALL = 100  # DescribeAlarms takes at most 100 names


@dataclass(frozen=True)
class AlarmState:
    """One alarm's state as CloudWatch last evaluated it."""

    name: str
    state: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str

    def describe(self) -> str:
        return f"alarm {self.name!r} is {self.state}" + (f" ({self.reason})" if self.reason else "")


class Alarms:
    """The alarms a rollout aborts on: those in ALARM, and (``insufficient_data_aborts``, as
    AWS AppConfig does by default) those without enough data to say."""

    def __init__(
        self,
        names: tuple[str, ...],
        *,
        region: str | None,
        insufficient_data_aborts: bool = True,
        client: Any = None,
    ) -> None:
        self.names = names
        self.insufficient_data_aborts = insufficient_data_aborts
        if client is None and names:
            try:
                client = boto3.session.Session().client(
                    "cloudwatch",
                    region_name=region,
                    config=Config(
                        connect_timeout=5, read_timeout=5, retries={"total_max_attempts": 3}
                    ),
                )
            except NoRegionError:
                raise ConfigError(
                    "no AWS region for the CloudWatch alarms: give --alarm-region REGION or "
                    "set AWS_REGION"
                ) from None
        self.client = client

    @property
    def region(self) -> str:
        return self.client.meta.region_name if self.client is not None else "(none)"

    def states(self) -> list[AlarmState]:
        """Every named alarm's state, in the order named. ConfigError names the alarms that do
        not exist; StoreUnavailable says why CloudWatch did not answer."""
        if not self.names:
            return []
        found: dict[str, AlarmState] = {}
        for start in range(0, len(self.names), NAMES_PER_CALL):
            answer = self._describe(list(self.names[start : start + NAMES_PER_CALL]))
            for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
                found[alarm["AlarmName"]] = AlarmState(
                    alarm["AlarmName"], alarm["StateValue"], alarm.get("StateReason", "")
                )
        missing = [name for name in self.names if name not in found]
        if missing:
            raise ConfigError(
                f"no CloudWatch alarm named {', '.join(map(repr, missing))} in region "
                f"{self.region}; check the name (alarm names are case-sensitive) or give "
                "--alarm-region"
            )
        return [found[name] for name in self.names]

    def aborting(self, states: list[AlarmState]) -> list[AlarmState]:
        """The states among ``states`` that abort a rollout."""
        stop = {ALARM, INSUFFICIENT_DATA} if self.insufficient_data_aborts else {ALARM}
        return [state for state in states if state.state in stop]

    def _describe(self, names: list[str]) -> dict[str, Any]:
        try:
            return self.client.describe_alarms(
                AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
        except NoCredentialsError:
            raise ConfigError(
                "no AWS credentials found for CloudWatch: give this process a role, or set "
                "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StoreUnavailable(
                f"CloudWatch DescribeAlarms failed in {self.region}: {error.get('Code')}: "
                f"{error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"CloudWatch did not answer in {self.region}: {exc}") from None

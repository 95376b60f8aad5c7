"""Who a participant is: an environment label and an instance id unique to one process."""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass

from beat_handover.beat_lock.errors import ConfigError

ENVIRONMENT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def validate_environment(label: object, *, setting: str = "environment") -> str:
    """Return ``label`` if it is a usable environment label, else raise ConfigError."""
    if not isinstance(label, str) or not ENVIRONMENT_PATTERN.match(label):
        raise ConfigError(
            f"{setting} must be a short lower-case label such as 'paas' or 'ecs' "
            f"(letters, digits, '-' or '_', at most 32 characters), got {label!r}"
        )
    return label


@dataclass(frozen=True)
class Identity:
    """An environment label (``paas``, ``ecs``, ...) and an instance id (host:pid:random)."""

    environment: str
    instance_id: str

    def __post_init__(self) -> None:
        validate_environment(self.environment)
        if not self.instance_id or not isinstance(self.instance_id, str):
            raise ConfigError(f"instance_id must be a non-empty string, got {self.instance_id!r}")

    @classmethod
    def new(cls, environment: str) -> Identity:
        """A fresh identity for this process; the random suffix tells restarts apart."""
        host = socket.gethostname().split(".")[0] or "host"
        return cls(environment, f"{host}:{os.getpid()}:{secrets.token_hex(3)}")

    def __str__(self) -> str:
        return f"{self.environment}/{self.instance_id}"

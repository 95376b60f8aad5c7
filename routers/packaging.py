"""Build the Lambda zip of a handler: the ``beat_handover.routers`` package and its config.

The zip holds only this package (standard library and boto3 imports; the Lambda Python runtime
provides boto3), under ``beat_handover/routers/``: ``beat_handover`` is a namespace package, so it
needs no ``__init__.py``. The zip is byte-for-byte reproducible: the same code and config give the
same SHA-256, so a deployment pipeline can tell whether anything changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beat_handover.routers.config import CONFIG_FILE_NAME, CONFIG_TYPES, parse_config

HANDLERS = {
    "cloudfront": "beat_handover.routers.cloudfront.handler",
    "ses_receipts": "beat_handover.routers.ses_receipts.handler",
}
ZIP_FOLDER = "beat_handover/routers"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def build_zip(kind: str, config: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/<route>-<kind>.zip`` and return its path. The config is validated first,
    so a bad one writes nothing."""
    parse_config(CONFIG_TYPES[kind], config)
    package = Path(__file__).parent
    files = {
        f"{ZIP_FOLDER}/{path.name}": path.read_bytes() for path in sorted(package.glob("*.py"))
    }
    files[f"{ZIP_FOLDER}/{CONFIG_FILE_NAME}"] = (
        json.dumps(dict(config), indent=2, sort_keys=True) + "\n"
    ).encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{config['route']}-{kind}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(partial, target)
    return target


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

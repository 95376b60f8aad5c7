"""The README's table of handler config keys says what routers/config.py does."""

from __future__ import annotations

import re
from pathlib import Path

from beat_handover.routers.config import CLOUDFRONT_KEYS, COMMON_KEYS, SES_RECEIPTS_KEYS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_documents_every_config_key_with_its_default():
    section = README.read_text().split("## Percentage routers", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]+) \|", section, re.MULTILINE))
    expected = set()
    for keys, handlers in (
        (COMMON_KEYS, "both"),
        (CLOUDFRONT_KEYS, "cloudfront"),
        (SES_RECEIPTS_KEYS, "ses_receipts"),
    ):
        for key, (_parser, default, _meaning) in keys.items():
            if default is None:
                shown = "unset"
            elif isinstance(default, str | int | float):
                shown = f"`{default}`"
            else:
                shown = "required"
            expected.add((key, handlers, shown))
    assert rows == expected

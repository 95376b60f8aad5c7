"""The configuration reference's table of router handler keys says what routers/config.py does:
every key each handler takes, with its default and meaning, and no other."""

from __future__ import annotations

import html
import re
from pathlib import Path

from beat_handover.routers.config import CLOUDFRONT_KEYS, COMMON_KEYS, SES_RECEIPTS_KEYS
from beat_handover.routers.fields import REQUIRED

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"
ROW = re.compile(
    r"^\| `(\w+)` \| (both|cloudfront|ses_receipts) \| ([^|]+) \| (.*) \|$", re.MULTILINE
)


def documented_default(cell: str, default: object) -> bool:
    if default is REQUIRED:
        return cell == "required"
    if default is None:
        return cell == "unset"
    shown = cell.removeprefix("`").removesuffix("`")
    if isinstance(default, int | float):
        return float(shown) == default
    return shown == default


def test_the_reference_documents_every_router_config_key_with_its_default_and_meaning():
    rows = {
        (key, handlers): (default.strip(), html.unescape(meaning).replace("\\|", "|"))
        for key, handlers, default, meaning in ROW.findall(REFERENCE.read_text())
    }
    expected = {
        (key, handlers): field
        for keys, handlers in (
            (COMMON_KEYS, "both"),
            (CLOUDFRONT_KEYS, "cloudfront"),
            (SES_RECEIPTS_KEYS, "ses_receipts"),
        )
        for key, field in keys.items()
    }
    assert set(rows) == set(expected)
    for row, field in expected.items():
        default, meaning = rows[row]
        assert documented_default(default, field.default), (row, default, field.default)
        assert meaning == field.meaning, row

"""``beat_handover.routers`` stands alone: the handlers import only the standard library (boto3
only for the operators' ``route_store``), and the packaged zip imports and runs its handlers in an
interpreter that has boto3 beside it, or nothing at all, without ever importing boto3: that is
what keeps their cold start short (``bench/bench_routers.py`` measures it)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from beat_handover.routers.packaging import HANDLERS, build_zip, sha256_of
from beat_handover.routers.route_format import QueueSide, Route
from tests.routers.conftest import REGION, origin_route
from tests.routers.test_cloudfront import event as cloudfront_event
from tests.routers.test_ses_receipts import sns_record

ROOT = Path(__file__).resolve().parents[2]
# The operators' reads and writes (``handover route``) use boto3; no handler imports them.
BOTO3_ALLOWED_IN = {"route_store.py"}
FORBIDDEN = (
    "celery",
    "kombu",
    "redis",
    "click",
    "croniter",
    "beat_handover.beat_lock",
    "beat_handover.scheduler",
    "beat_handover.handover",
)
# Run first in each clean interpreter: any import of a forbidden package fails loudly.
BLOCKER = f"""
import sys
def forbidden(name):
    return any(name == f or name.startswith(f + ".") for f in {FORBIDDEN!r})
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if forbidden(name):
            raise ImportError("routers imported " + name)
sys.meta_path.insert(0, Blocker())
"""


def allowed(name: str, source: str) -> bool:
    if name.split(".")[0] in ("boto3", "botocore"):
        return source in BOTO3_ALLOWED_IN
    return (
        name.split(".")[0] in set(sys.stdlib_module_names)
        or name == "beat_handover.routers"
        or name.startswith("beat_handover.routers.")
    )


def clean_python(code: str, *path: str) -> subprocess.CompletedProcess:
    """Run ``code`` with no site (no .pth, no editable installs) and only ``path`` importable
    besides the standard library, with the forbidden packages blocked."""
    script = f"import sys\nsys.path[:0] = {list(path)!r}\n{BLOCKER}\n{code}"
    return subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_routers_source_imports_only_the_standard_library_and_boto3_only_for_operators():
    for source in sorted((ROOT / "routers").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for imported in names:
                assert allowed(imported, source.name), f"{source.name} imports {imported}"


def test_the_handlers_import_in_an_interpreter_without_celery_redis_or_click(tmp_path):
    # The source folder as the installed layout has it: beat_handover/routers, nothing else.
    (tmp_path / "beat_handover").mkdir()
    (tmp_path / "beat_handover" / "routers").symlink_to(ROOT / "routers")
    result = clean_python(
        "import beat_handover.routers.cloudfront, beat_handover.routers.ses_receipts\n"
        "import beat_handover.routers.packaging\n"
        "print(sorted(n for n in sys.modules if forbidden(n)))",
        str(tmp_path),
        sysconfig.get_paths()["purelib"],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
def zip_config(route_table, name, sqs, put_route):
    """A packaged config for each kind, for a route at 100 % stored in the test table."""

    def config(kind: str) -> dict:
        base = {"route": name, "table": route_table, "region": REGION}
        if kind == "cloudfront":
            put_route(origin_route(name, "100"))
            return {**base, "sticky_cookie": "visitor"}
        old, new = (
            QueueSide(label, sqs.create_queue(QueueName=f"{name}-{label}")["QueueUrl"])
            for label in ("paas", "ecs")
        )
        put_route(Route(name, "ses_receipts", Decimal(100), old, new))
        return {**base, "fallback_side": {"label": "paas", "queue_url": old.queue_url}}

    return config


@pytest.mark.integration
@pytest.mark.parametrize(
    ("kind", "event", "expect"),
    [
        ("cloudfront", cloudfront_event(cookie="visitor=v1"), '"domainName": "ecs.example.com"'),
        ("ses_receipts", {"Records": [sns_record("m-1")]}, '"side": "ecs"'),
    ],
)
@pytest.mark.parametrize("beside", ["boto3", "nothing"])
def test_the_packaged_zip_runs_its_handler_without_importing_boto3(
    zip_config, tmp_path, kind, event, expect, beside
):
    config = zip_config(kind)
    path = build_zip(kind, config, tmp_path)
    assert path.name == f"{config['route']}-{kind}.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert json.loads(archive.read("beat_handover/routers/config.json")) == config
    assert "beat_handover/routers/config.json" in names
    assert "beat_handover/routers/switch.py" in names
    assert all(name.startswith("beat_handover/routers/") for name in names), names
    module, _, function = HANDLERS[kind].rpartition(".")
    task_root = tmp_path / "var-task"  # Lambda extracts the zip here and imports from it
    with zipfile.ZipFile(path) as archive:
        archive.extractall(task_root)
    result = clean_python(
        f"import json, importlib\nmodule = importlib.import_module({module!r})\n"
        f"assert module.__file__.startswith({str(task_root)!r}), module.__file__\n"
        f"answer = json.dumps(module.{function}({event!r}, None))\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('boto3', 'botocore')))\n"
        "print(answer)",
        str(task_root),
        *([sysconfig.get_paths()["purelib"]] if beside == "boto3" else []),
    )
    assert result.returncode == 0, result.stderr
    imported_boto, answer = result.stdout.splitlines()[-2:]
    assert expect in answer
    assert imported_boto == "[]"
    rebuilt = build_zip(kind, config, tmp_path / "again")
    assert sha256_of(rebuilt) == sha256_of(path), "the zip is not reproducible"

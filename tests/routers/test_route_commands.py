"""``handover route`` against the moto server: create, set, abort, history, show, package, and
the refusals (bad percentages, unknown routes, a Redis lock URL), with their exit codes."""

from __future__ import annotations

import getpass
import json
import re
import socket
import zipfile
from decimal import Decimal

import pytest

from beat_handover.handover.cli import main
from beat_handover.routers.errors import RouteConflict
from beat_handover.routers.route_format import route_to_item
from beat_handover.routers.route_store import change_percent, get_route, history
from tests.routers.conftest import BY, REGION, origin_route

pytestmark = pytest.mark.integration


@pytest.fixture
def created(handover, name):
    create = f"route create {name} --kind cloudfront --old https://paas.example.com --new "
    code, out, err = handover(
        *(create + "https://ecs.example.com:8443/app").split(), "--reason", "ecs is ready"
    )
    assert (code, err) == (0, ""), err
    assert out.startswith(f"created route {name} in table ")
    return name


def test_set_abort_and_history(handover, created, dynamodb, route_table):
    code, out, _ = handover("route", "set", created, "0.1", "--reason", "first visitors")
    assert code == 0
    assert out.splitlines() == [
        f"route {created}: 0% -> 0.1% to ecs (version 2)",
        "Every handler container follows within 30s (the route's cache TTL). CloudFront runs "
        "the router only on cache misses: responses it has cached keep coming from where they "
        "came from until they expire.",
    ]
    assert handover("route", "set", created, "12.5")[0] == 0
    code, out, _ = handover("route", "abort", created, "--reason", "5xx on ecs")
    assert code == 0
    assert out.splitlines()[0] == f"route {created}: 12.5% -> 0% to ecs (version 4)"
    assert get_route(dynamodb, route_table, created).percent == 0
    code, out, _ = handover("route", "history", created)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["WHEN", "(UTC)", "ACTION", "PERCENT", "VERSION", "BY", "REASON"]
    who = f"{getpass.getuser()}@{socket.gethostname().split('.')[0]}"
    assert [re.split(r"\s{2,}", row)[1:] for row in rows] == [
        ["abort", "12.5% -> 0%", "4", who, "5xx on ecs"],
        ["set", "0.1% -> 12.5%", "3", who],
        ["set", "0% -> 0.1%", "2", who, "first visitors"],
        ["create", "0%", "1", who, "ecs is ready"],
    ]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ", row) for row in rows)
    code, out, _ = handover("route", "history", created, "--json")
    assert code == 0
    assert [(c["action"], c["old_percent"], c["new_percent"]) for c in json.loads(out)] == [
        ("abort", "12.5", "0"),
        ("set", "0.1", "12.5"),
        ("set", "0", "0.1"),
        ("create", None, "0"),
    ]


def test_show_describes_the_route(handover, created):
    code, out, _ = handover("route", "show", created)
    assert code == 0
    assert out.splitlines()[:3] == [
        f"route {created} (cloudfront): 0% to ecs, the rest to paas",
        "  old  paas     https://paas.example.com:443",
        "  new  ecs      https://ecs.example.com:8443/app",
    ]
    code, out, _ = handover("route", "show")
    assert code == 0 and f"route {created} (cloudfront)" in out
    code, out, _ = handover("route", "show", created, "--json")
    assert code == 0
    (shown,) = json.loads(out)
    assert (shown["name"], shown["percent"], shown["cache_ttl_seconds"]) == (created, "0", 30)
    assert shown["new"] == {
        "label": "ecs",
        "domain_name": "ecs.example.com",
        "protocol": "https",
        "port": 8443,
        "path": "/app",
    }


@pytest.mark.parametrize("percent", ["150", "-5", "abc", "0.00001", "nan", ""])
def test_bad_percentages_are_refused(handover, created, percent, dynamodb, route_table):
    code, out, err = handover("route", "set", created, percent)
    assert (code, out) == (2, "")
    assert err == (
        "Error: PERCENT must be a number from 0 to 100 with at most 4 decimal places, such as "
        f"0.1 or 25, got {percent!r}\n"
    )
    assert len(history(dynamodb, route_table, created)) == 1


def test_an_unknown_route_is_refused(handover, route_table):
    code, _, err = handover("route", "set", "no-such-route", "5")
    assert code == 2
    assert err == (
        f"Error: there is no route 'no-such-route' in table '{route_table}'; see `handover route "
        "show` for the routes there are, or create it with `handover route create`\n"
    )


def test_setting_the_same_percentage_writes_nothing(handover, created, dynamodb, route_table):
    code, out, _ = handover("route", "set", created, "0")
    assert code == 0
    assert out == f"route {created} already sends 0% to ecs; nothing written\n"
    assert len(history(dynamodb, route_table, created)) == 1


def test_creating_a_route_twice_is_refused_as_wrong_input(handover, created):
    again = f"route create {created} --kind cloudfront --old https://a.example.com --new "
    code, _, err = handover(*(again + "https://b.example.com").split())
    assert code == 2
    assert err == (
        f"Error: route {created!r} exists already; change it with `handover route set`\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--old", "paas.example.com", "--new", "https://ecs.example.com"],
            "Error: --old must be an origin URL such as https://ecs.example.com or "
            "http://ecs.example.com:8080/app, got 'paas.example.com'\n",
        ),
        (
            [
                "--old",
                "https://a.example.com",
                "--new",
                "https://b.example.com",
                "--new-label",
                "paas",
            ],
            "Error: route 'r1': the sides need distinct labels, and old may not be called "
            "'new' nor new 'old'; got old='paas' new='paas'\n",
        ),
        (
            [
                "--old",
                "https://a.example.com",
                "--new",
                "https://b.example.com",
                "--cache-ttl",
                "0",
            ],
            "Error: Invalid value for '--cache-ttl': must be from 1s to 1h, got '0'\n",
        ),
        (
            [
                "--old",
                "https://a.example.com",
                "--new",
                "https://b.example.com",
                "--read-timeout",
                "5m",
            ],
            "Error: --old (a cloudfront side): field 'read_timeout_seconds' must be whole seconds "
            "from 1 to 180 (CloudFront's limits), got 300\n",
        ),
    ],
)
def test_bad_route_definitions_are_refused(handover, args, message):
    code, _, err = handover("route", "create", "r1", "--kind", "cloudfront", *args)
    assert code == 2 and err.endswith(message), err


def test_routes_need_a_dynamodb_lock_url(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["route", "show", "--lock-url", "redis://127.0.0.1:6379/0"])
    assert caught.value.code == 2
    assert "routes live in DynamoDB" in capsys.readouterr().err


def test_a_write_racing_another_is_refused_not_lost(dynamodb, route_table, put_route, name):
    put_route(origin_route(name, "5"))

    def sneak_in(**_: object) -> None:
        rival = origin_route(name, "50")
        item = route_to_item(rival) | {"version": {"N": "7"}}
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", sneak_in)
        dynamodb.put_item(TableName=route_table, Item=item)

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", sneak_in)
    with pytest.raises(RouteConflict, match="was changed by someone else while we wrote it"):
        change_percent(dynamodb, route_table, name, Decimal(10), action="set", reason="", **BY)
    assert get_route(dynamodb, route_table, name).percent == 50


def test_package_bakes_the_route_and_options_into_the_zip(handover, created, tmp_path, route_table):
    options = tmp_path / "options.json"
    options.write_text(
        json.dumps({"sticky_cookie": "visitor", "override_secret": "0123456789abcdef-x"})
    )
    code, out, _ = handover(
        "route", "package", created, "--out", str(tmp_path / "dist"), "--config", str(options)
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'dist' / created}-cloudfront.zip (")
    assert (
        lines[1]
        == "handler: beat_handover.routers.cloudfront.handler   runtime: python3.11 or newer"
    )
    assert "create the function in us-east-1" in out
    with zipfile.ZipFile(tmp_path / "dist" / f"{created}-cloudfront.zip") as archive:
        config = json.loads(archive.read("beat_handover/routers/config.json"))
    assert config == {
        "route": created,
        "table": route_table,
        "region": REGION,
        "cache_ttl_seconds": 30,
        "fallback_side": {
            "label": "paas",
            "domain_name": "paas.example.com",
            "protocol": "https",
            "port": 443,
            "path": "",
        },
        "sticky_cookie": "visitor",
        "override_secret": "0123456789abcdef-x",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"table": "other"}, "sets table; those come from the route and the lock URL"),
        ({"sticky_cooky": "v"}, "the cloudfront handler config has unknown key(s) 'sticky_cooky'"),
        ([1], "must hold a JSON object, got [1]"),
    ],
)
def test_package_refuses_bad_options(handover, created, tmp_path, options, message):
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    code, _, err = handover(
        "route", "package", created, "--out", str(tmp_path), "--config", str(path)
    )
    assert code == 2 and message in err
    assert not list(tmp_path.glob("*.zip"))

"""The CloudFront origin-request handler on the moto server: origin and Host rewritten, overrides
honoured only with the secret and always stripped, sticky visitors, clear config errors."""

from __future__ import annotations

import copy
import json

import pytest

import beat_handover.routers.cloudfront
from beat_handover.routers.cloudfront import make_handler
from beat_handover.routers.errors import RouterConfigError, UnprocessableEvent
from tests.routers.conftest import REGION, origin_route
from tests.servers import free_port

pytestmark = pytest.mark.integration
SECRET = "s3cret-s3cret-s3cret"

EVENT = {
    "Records": [
        {
            "cf": {
                "config": {"distributionId": "EDFDVBD6EXAMPLE", "eventType": "origin-request"},
                "request": {
                    "clientIp": "203.0.113.178",
                    "method": "GET",
                    "uri": "/letters",
                    "querystring": "",
                    "headers": {
                        "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                        "user-agent": [{"key": "User-Agent", "value": "test"}],
                    },
                    "origin": {
                        "custom": {
                            "customHeaders": {},
                            "domainName": "paas.example.com",
                            "keepaliveTimeout": 5,
                            "path": "",
                            "port": 443,
                            "protocol": "https",
                            "readTimeout": 30,
                            "sslProtocols": ["TLSv1.2"],
                        }
                    },
                },
            }
        }
    ]
}


def event(**headers: str) -> dict:
    """The origin-request event with extra headers (name=value, '_' for '-')."""
    copied = copy.deepcopy(EVENT)
    request_headers = copied["Records"][0]["cf"]["request"]["headers"]
    for name, value in headers.items():
        header = name.replace("_", "-")
        request_headers[header] = [{"key": header.title(), "value": value}]
    return copied


@pytest.fixture
def handler_for(route_table, name, clock):
    def build(**config):
        emitted: list[str] = []
        handler = make_handler(
            {"route": name, "table": route_table, "region": REGION, **config},
            clock=clock,
            emit=emitted.append,
        )
        handler.emitted = emitted
        return handler

    return build


def test_new_side_rewrites_origin_host_and_labels_the_request(name, put_route, handler_for):
    put_route(origin_route(name, "100", read_timeout_seconds=60, keepalive_timeout_seconds=10))
    request = handler_for()(event(), None)
    assert request["origin"]["custom"] == {
        "customHeaders": {},
        "domainName": "ecs.example.com",
        "keepaliveTimeout": 10,
        "path": "/app",
        "port": 8443,
        "protocol": "https",
        "readTimeout": 60,
        "sslProtocols": ["TLSv1.2"],
    }
    assert request["headers"]["host"] == [{"key": "Host", "value": "ecs.example.com"}]
    assert request["headers"]["x-route-side"] == [{"key": "X-Route-Side", "value": "ecs"}]
    assert request["uri"] == "/letters"


def test_old_side_points_at_the_old_origin(name, put_route, handler_for):
    put_route(origin_route(name, "0"))
    request = handler_for()(event(x_route_side="ecs"), None)
    assert request["origin"]["custom"]["domainName"] == "paas.example.com"
    assert request["origin"]["custom"]["path"] == ""
    assert request["headers"]["host"] == [{"key": "Host", "value": "paas.example.com"}]
    assert request["headers"]["x-route-side"] == [{"key": "X-Route-Side", "value": "paas"}]


@pytest.mark.parametrize("value", ["new", "ecs"])
def test_override_with_the_secret_forces_a_side_and_is_stripped(
    name, put_route, handler_for, value
):
    put_route(origin_route(name, "0"))
    handler = handler_for(override_secret=SECRET)
    request = handler(event(x_route_override=value, x_route_secret=SECRET), None)
    assert request["origin"]["custom"]["domainName"] == "ecs.example.com"
    assert "x-route-override" not in request["headers"]
    assert "x-route-secret" not in request["headers"]


@pytest.mark.parametrize(
    ("config", "headers"),
    [
        ({"override_secret": SECRET}, {"x_route_override": "new"}),
        ({"override_secret": SECRET}, {"x_route_override": "new", "x_route_secret": "guess"}),
        (
            {"override_secret": SECRET},
            {"x_route_override": "new", "x_route_secret": SECRET[:-1] + "X"},
        ),
        ({}, {"x_route_override": "new", "x_route_secret": SECRET}),
        ({"override_secret": SECRET}, {"x_route_override": "staging", "x_route_secret": SECRET}),
    ],
    ids=["no-secret", "wrong-secret", "almost-the-secret", "overrides-disabled", "unknown-side"],
)
def test_override_without_the_secret_is_ignored_and_still_stripped(
    name, put_route, handler_for, config, headers
):
    put_route(origin_route(name, "0"))
    request = handler_for(**config)(event(**headers), None)
    assert request["origin"]["custom"]["domainName"] == "paas.example.com"
    assert request["headers"]["x-route-side"][0]["value"] == "paas"
    assert "x-route-override" not in request["headers"]
    assert "x-route-secret" not in request["headers"]


def test_override_headers_are_stripped_even_when_absent_from_config_defaults(
    name, put_route, handler_for
):
    put_route(origin_route(name, "100"))
    handler = handler_for(
        override_header="x-force-side",
        override_secret_header="x-force-key",
        override_secret=SECRET,
    )
    request = handler(event(x_force_side="paas", x_force_key=SECRET), None)
    assert request["origin"]["custom"]["domainName"] == "paas.example.com"
    assert not {"x-force-side", "x-force-key"} & set(request["headers"])


def test_a_visitor_with_a_sticky_cookie_always_lands_on_one_side(name, put_route, handler_for):
    put_route(origin_route(name, "50"))
    handler = handler_for(sticky_cookie="visitor")
    sides = {}
    for i in range(200):
        cookie = f"theme=dark; visitor=v{i}; other=1"
        seen = {
            handler(event(cookie=cookie), None)["headers"]["x-route-side"][0]["value"]
            for _ in range(5)
        }
        assert len(seen) == 1, f"visitor v{i} was sent to {seen}"
        sides[i] = seen.pop()
    assert set(sides.values()) == {"paas", "ecs"}


def test_a_sticky_header_is_used_when_configured(name, put_route, handler_for):
    put_route(origin_route(name, "50"))
    handler = handler_for(sticky_header="X-Account")
    for i in range(50):
        seen = {
            handler(event(x_account=f"a{i}"), None)["headers"]["x-route-side"][0]["value"]
            for _ in range(5)
        }
        assert len(seen) == 1


def test_without_any_route_config_the_request_keeps_its_own_origin(handler_for):
    handler = handler_for(endpoint_url=f"http://127.0.0.1:{free_port()}", store_timeout_seconds=0.3)
    request = handler(event(), None)
    assert request["origin"] == EVENT["Records"][0]["cf"]["request"]["origin"]
    assert request["headers"]["host"][0]["value"] == "d111111abcdef8.cloudfront.net"
    assert request["headers"]["x-route-side"][0]["value"] == "old"
    assert json.loads(handler.emitted[0])["config"] == "none"


def test_an_event_that_is_not_an_origin_request_is_refused(name, put_route, handler_for):
    put_route(origin_route(name, "0"))
    with pytest.raises(UnprocessableEvent, match=r"expected a CloudFront origin-request event"):
        handler_for()({"Records": [{"Sns": {}}]}, None)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"stiky_cookie": "v"},
            "the cloudfront handler config has unknown key(s) 'stiky_cookie'; the keys are "
            "route, table, region, cache_ttl_seconds, store_timeout_seconds, endpoint_url, "
            "metrics_namespace, fallback_side, sticky_cookie, sticky_header, override_header, "
            "override_secret_header, override_secret, side_header",
        ),
        (
            {"override_secret": "short"},
            "the cloudfront handler config: key 'override_secret' must be a printable secret "
            "of at least 16 characters, got 'short'",
        ),
        (
            {"cache_ttl_seconds": 0},
            "the cloudfront handler config: key 'cache_ttl_seconds' must be a number of seconds "
            "greater than 0 and at most 3600, got 0",
        ),
        (
            {"side_header": "X-Amz-Cf-Id"},
            "the cloudfront handler config: key 'side_header' must be a header name "
            "Lambda@Edge lets a function add and remove",
        ),
        ({"side_header": "x-route-secret"}, "the header config keys must name distinct headers"),
        (
            {"region": "London"},
            "the cloudfront handler config: key 'region' must be an AWS region name such as "
            "eu-west-2, got 'London'",
        ),
        (
            {"fallback_side": {"label": "paas"}},
            "config key 'fallback_side' (a cloudfront side) lacks the required field 'domain_name'",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_value(route_table, config, message):
    with pytest.raises(RouterConfigError) as caught:
        make_handler({"route": "web", "table": route_table, "region": REGION, **config})
    assert str(caught.value).startswith(message)


def test_a_missing_required_key_is_named():
    with pytest.raises(RouterConfigError) as caught:
        make_handler({"route": "web", "region": REGION})
    assert str(caught.value) == "the cloudfront handler config lacks the required key 'table'"


def test_the_module_handler_says_how_to_package_its_config():
    with pytest.raises(RouterConfigError) as caught:
        beat_handover.routers.cloudfront.handler(event(), None)
    assert "config.json is missing" in str(caught.value)
    assert "handover route package ROUTE --out DIR" in str(caught.value)


def test_without_credentials_everything_goes_old_and_the_log_says_what_to_set(
    name, put_route, handler_for, monkeypatch, caplog
):
    put_route(origin_route(name, "100"))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    request = handler_for()(event(), None)
    assert request["headers"]["x-route-side"][0]["value"] == "old"
    assert request["origin"]["custom"]["domainName"] == "paas.example.com"
    assert "NO ROUTE CONFIG HAS EVER BEEN READ" in caplog.text
    assert "AwsRequestRefused: no AWS credentials: none of AWS_ACCESS_KEY_ID" in caplog.text

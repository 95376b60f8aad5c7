"""The handlers' AWS client: signed as AWS checks signatures (a moto server with IAM auth on),
errors mapped, retries as botocore's standard mode, one kept-alive connection that survives the
server closing it, and a network that fails (the fault proxy in front of the moto server). Answers
moto never gives (throttling, 5xx, a damaged body) come from a scripted HTTP server."""

from __future__ import annotations

import json
import random
import urllib.request
import zlib
from decimal import Decimal

import boto3
import pytest

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.routers.aws_client import AwsClient, endpoint_for
from beat_handover.routers.cloudfront import make_handler as make_cloudfront_handler
from beat_handover.routers.errors import AwsRequestRefused, AwsUnavailable, RouterConfigError
from beat_handover.routers.route_format import QueueSide, Route, route_key
from beat_handover.routers.route_store import create_route
from beat_handover.routers.ses_receipts import make_handler as make_ses_handler
from tests.faults.proxy import Fault, FaultProxy
from tests.routers.conftest import BY, REGION, origin_route
from tests.routers.scripted_server import Answer, ScriptedServer
from tests.routers.test_cloudfront import event as cloudfront_event
from tests.routers.test_ses_receipts import sns_record
from tests.servers import start_moto_server

KEYS = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"}


def client_for(
    url: str,
    service: str = "dynamodb",
    *,
    sleeps=None,
    sleep=None,
    attempts=2,
    read_timeout_seconds=2.0,
    **env,
):
    """A client of ``url`` with test keys (``env`` adds to or replaces them). ``sleeps`` collects
    the retry delays, which are not slept; ``sleep`` is called instead, if given."""
    return AwsClient(
        service,
        REGION,
        endpoint_url=url,
        connect_timeout_seconds=2,
        read_timeout_seconds=read_timeout_seconds,
        attempts=attempts,
        environ={**KEYS, **env},
        sleep=sleep or (sleeps.append if sleeps is not None else lambda seconds: None),
        rng=random.Random(3),
    )


def crc32_answer(body: bytes, **extra) -> Answer:
    return Answer(body=body, headers={"x-amz-crc32": str(zlib.crc32(body))}, **extra)


# --- the endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "environ", "expected"),
    [
        ("eu-west-2", {}, "https://dynamodb.eu-west-2.amazonaws.com"),
        ("cn-north-1", {}, "https://dynamodb.cn-north-1.amazonaws.com.cn"),
        ("eu-west-2", {"AWS_ENDPOINT_URL": "http://localhost:4566/"}, "http://localhost:4566"),
        (
            "eu-west-2",
            {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"},
            "http://b:2",
        ),
        (
            "eu-west-2",
            {"AWS_ENDPOINT_URL_SQS": "http://b:2"},
            "https://dynamodb.eu-west-2.amazonaws.com",
        ),
    ],
)
def test_the_endpoint_is_chosen_as_boto3_chooses_it(region, environ, expected):
    assert endpoint_for("dynamodb", region, None, environ) == expected


def test_the_configured_endpoint_wins_over_the_environment():
    environ = {"AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"}
    assert endpoint_for("dynamodb", REGION, "http://c:3", environ) == "http://c:3"


@pytest.mark.parametrize(
    ("region", "url", "message"),
    [
        (
            "us-iso-east-1",
            None,
            "region 'us-iso-east-1' is in an isolated AWS partition, whose dynamodb endpoint "
            "this handler does not know: set the config key endpoint_url",
        ),
        (
            REGION,
            "http://localhost:4566/prefix",
            "endpoint_url must be an http(s) URL of a host and an optional port, such as "
            "http://localhost:4566, got 'http://localhost:4566/prefix'",
        ),
    ],
)
def test_an_endpoint_it_cannot_use_is_a_config_error(region, url, message):
    with pytest.raises(RouterConfigError) as caught:
        endpoint_for("dynamodb", region, url, {})
    assert str(caught.value) == message


# --- signed as AWS checks it --------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_moto(tmp_path_factory, moto_server):
    """A moto server of its own that checks every signature and permission, with a role that may
    GetItem and SendMessage, its temporary credentials (as Lambda's: key, secret, session
    token), a route table with a route at 100 % and two queues."""
    server = start_moto_server(tmp_path_factory.mktemp("signed-moto"))
    try:
        aws = {"region_name": REGION, "endpoint_url": server.url, **_lower(server.env())}
        iam, sts = boto3.client("iam", **aws), boto3.client("sts", **aws)
        dynamodb, sqs = boto3.client("dynamodb", **aws), boto3.client("sqs", **aws)
        trust = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
        role = iam.create_role(RoleName="router", AssumeRolePolicyDocument=_policy(trust))["Role"]
        # The handlers need GetItem and SendMessage; ReceiveMessage is for the test to look.
        allowed = ["dynamodb:GetItem", "sqs:SendMessage", "sqs:ReceiveMessage"]
        allow = {"Effect": "Allow", "Action": allowed}
        iam.put_role_policy(
            RoleName="router",
            PolicyName="router",
            PolicyDocument=_policy({**allow, "Resource": "*"}),
        )
        create_table("routes", REGION, endpoint_url=server.url)
        create_route(dynamodb, "routes", origin_route("web", "100"), reason="test", **BY)
        queues = {
            label: QueueSide(label, sqs.create_queue(QueueName=label)["QueueUrl"])
            for label in ("paas", "ecs")
        }
        create_route(
            dynamodb,
            "routes",
            Route("mail", "ses_receipts", Decimal(100), queues["paas"], queues["ecs"]),
            reason="test",
            **BY,
        )
        granted = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="router")["Credentials"]
        urllib.request.urlopen(
            urllib.request.Request(
                f"{server.url}/moto-api/reset-auth",
                data=b"0",  # from now on every request must be signed by a known key
                method="POST",
                headers={"Content-Type": "text/plain"},
            ),
            timeout=10,
        ).read()
        server.lambda_env = {
            "AWS_ACCESS_KEY_ID": granted["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": granted["SecretAccessKey"],
            "AWS_SESSION_TOKEN": granted["SessionToken"],
        }
        server.queues = queues
        server.sqs = boto3.client(
            "sqs",
            region_name=REGION,
            endpoint_url=server.url,
            aws_access_key_id=granted["AccessKeyId"],
            aws_secret_access_key=granted["SecretAccessKey"],
            aws_session_token=granted["SessionToken"],
        )
        yield server
    finally:
        server.stop()


def _lower(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
    }


def _policy(statement: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.integration
def test_both_handlers_run_on_a_server_that_checks_signatures(signed_moto, monkeypatch):
    for name, value in signed_moto.lambda_env.items():
        monkeypatch.setenv(name, value)
    base = {"table": "routes", "region": REGION, "endpoint_url": signed_moto.url}
    cloudfront = make_cloudfront_handler({"route": "web", **base}, emit=lambda line: None)
    request = cloudfront(cloudfront_event(), None)
    assert request["headers"]["x-route-side"][0]["value"] == "ecs"
    queues = signed_moto.queues
    ses = make_ses_handler(
        {
            "route": "mail",
            "fallback_side": {"label": "paas", "queue_url": queues["paas"].queue_url},
            **base,
        },
        emit=lambda line: None,
    )
    assert ses({"Records": [sns_record("signed-1")]}, None)["queued"][0]["side"] == "ecs"
    messages = signed_moto.sqs.receive_message(QueueUrl=queues["ecs"].queue_url)["Messages"]
    assert len(messages) == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"AWS_SESSION_TOKEN": "not-the-token"}, "InvalidClientTokenId"),
    ],
)
def test_a_wrong_secret_or_token_is_refused_at_once(signed_moto, spoil, code):
    sleeps: list[float] = []
    client = client_for(
        signed_moto.url, sleeps=sleeps, attempts=3, **{**signed_moto.lambda_env, **spoil}
    )
    with pytest.raises(AwsRequestRefused) as caught:
        client.call("GetItem", {"TableName": "routes", "Key": route_key("web")})
    assert (caught.value.code, caught.value.status) == (code, 403)
    assert str(caught.value).startswith(f"dynamodb GetItem answered HTTP 403 {code}: ")
    assert sleeps == [], "a refusal is not retried"


@pytest.mark.integration
def test_a_call_the_role_may_not_make_is_refused_naming_the_action(signed_moto):
    client = client_for(signed_moto.url, **signed_moto.lambda_env)
    with pytest.raises(AwsRequestRefused) as caught:
        client.call("PutItem", {"TableName": "routes", "Item": route_key("other")})
    assert caught.value.code == "AccessDenied"
    assert "is not authorized to perform: dynamodb:PutItem" in str(caught.value)


# --- errors of the shared moto server -----------------------------------------------------------


@pytest.mark.integration
def test_a_missing_table_is_refused_with_dynamodbs_code(moto_server):
    with pytest.raises(AwsRequestRefused) as caught:
        client_for(moto_server.url).call("GetItem", {"TableName": "nope", "Key": route_key("w")})
    assert (caught.value.code, caught.value.status) == ("ResourceNotFoundException", 400)


@pytest.mark.integration
def test_a_missing_queue_is_refused_with_sqss_code(moto_server):
    queue_url = f"{moto_server.url}/123456789012/no-such-queue"
    with pytest.raises(AwsRequestRefused) as caught:
        client_for(moto_server.url, "sqs").call(
            "SendMessage", {"QueueUrl": queue_url, "MessageBody": "x"}
        )
    assert caught.value.code == "AWS.SimpleQueueService.NonExistentQueue"
    assert caught.value.status == 400


# --- a failing network (the fault proxy in front of the moto server) ----------------------------


@pytest.fixture
def proxy(moto_server):
    with FaultProxy(moto_server.port) as proxy:
        yield proxy


@pytest.fixture
def queue_url(moto_server, sqs, unique_name):
    return sqs.create_queue(QueueName=unique_name)["QueueUrl"]


@pytest.mark.integration
def test_a_cut_network_fails_after_the_attempts_and_the_next_call_reconnects(proxy, queue_url, sqs):
    sleeps: list[float] = []
    client = client_for(f"http://127.0.0.1:{proxy.port}", "sqs", sleeps=sleeps, attempts=3)
    client.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": "before"})
    proxy.set(Fault.REFUSE)
    with pytest.raises(AwsUnavailable) as caught:
        client.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": "during"})
    assert str(caught.value).startswith(
        f"sqs SendMessage at http://127.0.0.1:{proxy.port} failed 3 time(s); the last time: "
    )
    assert len(sleeps) == 2
    proxy.set(Fault.PASS)
    client.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": "after"})
    bodies = [
        m["Body"]
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted(bodies) == ["after", "before"]


@pytest.mark.integration
def test_a_silent_network_times_out_and_is_retried(proxy, queue_url):
    sleeps: list[float] = []
    client = client_for(
        f"http://127.0.0.1:{proxy.port}", "sqs", sleeps=sleeps, read_timeout_seconds=0.2
    )
    proxy.set(Fault.PARTITION)
    with pytest.raises(AwsUnavailable) as caught:
        client.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": "lost"})
    assert caught.value.code == "TimeoutError"
    assert len(sleeps) == 1


@pytest.mark.integration
def test_a_send_whose_answer_was_lost_is_sent_again_so_the_queue_can_hold_it_twice(
    proxy, queue_url, sqs
):
    """As with botocore: SQS cannot tell a repeat, so a task must recognise its id (the SES
    router derives it from the SNS MessageId)."""
    proxy.set(Fault.DROP_RESPONSES, fraction=1.0)
    client = client_for(
        f"http://127.0.0.1:{proxy.port}",
        "sqs",
        read_timeout_seconds=0.5,
        sleep=lambda seconds: proxy.set(Fault.PASS),  # the retry's answer arrives
    )
    answer = client.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": "once?"})
    assert answer["MessageId"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in messages] == ["once?", "once?"]


# --- answers moto never gives (a scripted server) -----------------------------------------------


@pytest.fixture
def server():
    with ScriptedServer() as server:
        yield server


def test_the_request_is_the_json_protocols_signed_post(server):
    server.script(crc32_answer(b'{"Item": {"pk": {"S": "route#web"}}}'))
    client = client_for(server.url, AWS_SESSION_TOKEN="the-token")
    answer = client.call("GetItem", {"TableName": "routes", "Key": route_key("web")})
    assert answer == {"Item": {"pk": {"S": "route#web"}}}
    (received,) = server.received
    assert json.loads(received.body) == {"TableName": "routes", "Key": route_key("web")}
    assert received.headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert received.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert received.headers["X-Amz-Security-Token"] == "the-token"
    assert received.headers["Host"] == server.url.removeprefix("http://")
    assert received.headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDTEST/{received.headers['X-Amz-Date'][:8]}/"
        f"{REGION}/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
        "x-amz-security-token;x-amz-target, Signature="
    )


def test_throttling_is_retried_after_a_backoff_of_up_to_a_second(server):
    throttled = json.dumps(
        {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"}
    ).encode()
    server.script(Answer(400, throttled), crc32_answer(b"{}"))
    sleeps: list[float] = []
    assert client_for(server.url, sleeps=sleeps).call("GetItem", {}) == {}
    assert sleeps == [random.Random(3).random() * 1.0]


def test_server_errors_back_off_25_ms_then_50_for_dynamodb_and_give_up_after_the_attempts(server):
    server.script(Answer(500, b"{}"), Answer(503, b"{}"), Answer(502, b"<html>bad gateway"))
    sleeps: list[float] = []
    with pytest.raises(AwsUnavailable) as caught:
        client_for(server.url, sleeps=sleeps, attempts=3).call("GetItem", {})
    draws = random.Random(3)
    assert sleeps == [draws.random() * 0.025, draws.random() * 0.05]
    assert (caught.value.code, caught.value.status) == ("HTTP502", 502)
    assert str(caught.value).endswith(
        "failed 3 time(s); the last time: dynamodb GetItem answered HTTP 502 HTTP502: "
        "<html>bad gateway"
    )


def test_a_dynamodb_answer_damaged_on_the_way_is_retried(server):
    server.script(
        Answer(body=b'{"Item": {}}', headers={"x-amz-crc32": "12345"}), crc32_answer(b"{}")
    )
    sleeps: list[float] = []
    assert client_for(server.url, sleeps=sleeps).call("GetItem", {}) == {}
    assert len(sleeps) == 1


def test_a_damaged_answer_every_time_is_unavailable(server):
    server.script(*[Answer(body=b"{}", headers={"x-amz-crc32": "1"})] * 2)
    with pytest.raises(AwsUnavailable) as caught:
        client_for(server.url).call("GetItem", {})
    assert caught.value.code == "CRC32Mismatch"
    assert "not 1 as its x-amz-crc32 header says: it was damaged on the way" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (
            Answer(
                400,
                b'{"__type": "com.amazon.coral.validate#ValidationException", '
                b'"message": "1 validation error"}',
            ),
            "ValidationException",
            "dynamodb GetItem answered HTTP 400 ValidationException: 1 validation error",
        ),
        (
            Answer(
                403,
                b"<ErrorResponse><Error><Code>InvalidSignatureException</Code>"
                b"<Message>Signature expired</Message></Error></ErrorResponse>",
            ),
            "InvalidSignatureException",
            "dynamodb GetItem answered HTTP 403 InvalidSignatureException: Signature expired",
        ),
        (
            Answer(
                400,
                b'{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no"}',
                headers={"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
            ),
            "AWS.SimpleQueueService.NonExistentQueue",
            "dynamodb GetItem answered HTTP 400 AWS.SimpleQueueService.NonExistentQueue: no",
        ),
        (
            Answer(400, b"", headers={"x-amzn-ErrorType": "AccessDeniedException:http://x/"}),
            "AccessDeniedException",
            "dynamodb GetItem answered HTTP 400 AccessDeniedException: (no message)",
        ),
    ],
)
def test_a_refusal_is_raised_at_once_with_aws_code_and_message(server, answer, code, message):
    server.script(answer)
    sleeps: list[float] = []
    with pytest.raises(AwsRequestRefused) as caught:
        client_for(server.url, sleeps=sleeps).call("GetItem", {})
    assert (caught.value.code, str(caught.value)) == (code, message)
    assert sleeps == []


def test_an_answer_that_is_not_json_is_unavailable(server):
    server.script(Answer(200, b"<html>a captive portal</html>"), Answer(200, b"[]"))
    with pytest.raises(AwsUnavailable) as caught:
        client_for(server.url).call("GetItem", {})
    assert caught.value.code == "InvalidAnswer"
    assert "answered HTTP 200 with a body that is not a JSON object: b'[]'" in str(caught.value)


def test_one_connection_is_kept_between_calls(server):
    server.script(crc32_answer(b"{}"), crc32_answer(b"{}"), crc32_answer(b"{}"))
    client = client_for(server.url)
    for _ in range(3):
        client.call("GetItem", {})
    assert [received.connection for received in server.received] == [1, 1, 1]


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending(server):
    server.script(crc32_answer(b"{}", close=True), crc32_answer(b"{}"))
    sleeps: list[float] = []
    client = client_for(server.url, sleeps=sleeps)
    client.call("GetItem", {})
    server.wait_closed(1)
    client.call("GetItem", {})
    assert [received.connection for received in server.received] == [1, 2]
    assert sleeps == [], "the closed connection cost a failed attempt"

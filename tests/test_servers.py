"""The shared fixtures start real servers that answer (every later test relies on them)."""

import boto3
import pytest
import redis

pytestmark = pytest.mark.integration


def test_moto_server_serves_dynamodb_and_sqs_over_http(moto_server, unique_name):
    dynamodb = boto3.client("dynamodb")
    assert dynamodb.meta.endpoint_url == moto_server.url
    dynamodb.create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=unique_name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    item = dynamodb.get_item(TableName=unique_name, Key={"pk": {"S": "a"}})["Item"]
    assert item["v"] == {"N": "1"}
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]


def test_redis_server_is_our_own_throwaway_instance(redis_url, redis_server):
    assert redis_server.port != 6379
    client = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"

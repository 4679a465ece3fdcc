"""The embedded backend's SQS speed fixes change how fast moto answers, never what."""

from __future__ import annotations

import uuid

import pytest

from comfyfab import moto_fast
from comfyfab.cloud import EmbeddedAws


@pytest.fixture(scope="module")
def sqs():
    with EmbeddedAws(mode="thread") as aws:  # moto in this process, where the test can watch it
        yield aws.cloud().client("sqs")


def _send(sqs, url, dedup=None, group="g"):
    return sqs.send_message(QueueUrl=url, MessageBody="{}", MessageGroupId=group,
                            MessageDeduplicationId=dedup or str(uuid.uuid4()))


def test_fixes_are_applied_to_this_moto():
    # If moto changes shape the fixes step aside; this says so rather than hiding it.
    assert moto_fast.apply() is True


def test_send_and_receive_do_not_count_the_queue(sqs, monkeypatch):
    from moto.sqs.models import Queue

    url = sqs.create_queue(QueueName=f"c{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    counted = []
    real = Queue.approximate_number_of_messages
    monkeypatch.setattr(Queue, "approximate_number_of_messages",
                        property(lambda self: counted.append(1) or real.fget(self)))
    for _ in range(5):
        _send(sqs, url)
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": "{}", "MessageGroupId": "g", "MessageDeduplicationId": str(uuid.uuid4())}
        for i in range(3)])
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=30)  # checks retention per message
    assert counted == []
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counted, "GetQueueAttributes still counts"
    assert attrs["ApproximateNumberOfMessages"] == "5"
    assert attrs["ContentBasedDeduplication"] == "false" and attrs["FifoQueue"] == "true"


def test_fifo_rules_still_hold(sqs):
    url = sqs.create_queue(QueueName=f"r{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    _send(sqs, url, dedup="same")
    _send(sqs, url, dedup="same")  # deduplicated within the 5-minute window
    with pytest.raises(sqs.exceptions.ClientError, match="MessageDeduplicationId"):
        sqs.send_message(QueueUrl=url, MessageBody="{}", MessageGroupId="g")  # no content-based dedup
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert len(got) == 1
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")


@pytest.fixture(scope="module")
def ddb():
    with EmbeddedAws(mode="thread") as aws:
        c = aws.cloud().client("dynamodb")
        c.create_table(TableName="t", AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                       KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        yield c


def test_an_update_expression_is_parsed_once_and_its_tree_never_changes(ddb):
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    expr = "SET #s = :s, #n = :n ADD #c :one"
    assert UpdateExpressionParser.make(expr) is UpdateExpressionParser.make(expr)
    names = {"#s": "status", "#n": "note", "#c": "count"}
    for k, status in (("a", "running"), ("b", "done"), ("a", "done")):
        ddb.update_item(TableName="t", Key={"k": {"S": k}}, UpdateExpression=expr, ExpressionAttributeNames=names,
                        ExpressionAttributeValues={":s": {"S": status}, ":n": {"S": f"{k}-{status}"},
                                                   ":one": {"N": "1"}})
    a = ddb.get_item(TableName="t", Key={"k": {"S": "a"}}, ConsistentRead=True)["Item"]
    b = ddb.get_item(TableName="t", Key={"k": {"S": "b"}}, ConsistentRead=True)["Item"]
    # each call applied its own values to its own item: the shared tree was not filled in by an earlier call
    assert (a["status"], a["note"], a["count"]) == ({"S": "done"}, {"S": "a-done"}, {"N": "2"})
    assert (b["status"], b["note"], b["count"]) == ({"S": "done"}, {"S": "b-done"}, {"N": "1"})


def test_a_bad_update_expression_is_refused_every_time(ddb):
    for _ in range(2):  # a failed parse is not remembered as a success
        with pytest.raises(ddb.exceptions.ClientError, match="ValidationException"):
            ddb.update_item(TableName="t", Key={"k": {"S": "x"}}, UpdateExpression="SET = :v",
                            ExpressionAttributeValues={":v": {"S": "1"}})


def test_a_reset_still_empties_every_service_in_use(sqs, ddb):
    # (last in this module: a reset empties the whole in-process moto)
    import requests

    url = sqs.create_queue(QueueName=f"z{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(2):  # the second time round, the backends exist before the reset and are found again
        endpoint = sqs.meta.endpoint_url
        assert requests.post(f"{endpoint}/moto-api/reset", timeout=10).ok
        assert sqs.list_queues().get("QueueUrls", []) == []
        assert ddb.list_tables()["TableNames"] == []
        url = sqs.create_queue(QueueName="again")["QueueUrl"]
        ddb.create_table(TableName="again", AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    assert sqs.list_queues()["QueueUrls"] == [url]

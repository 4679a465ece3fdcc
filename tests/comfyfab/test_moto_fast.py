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


def test_send_does_not_count_the_queue(sqs, monkeypatch):
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
    assert counted == []
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counted, "GetQueueAttributes still counts"
    assert attrs["ApproximateNumberOfMessages"] == "8"
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

"""The embedded backend's three ways to host moto behave the same from the client's side."""

from __future__ import annotations

import urllib.request

import pytest

from comfyfab.cloud import BackendError, EmbeddedAws


@pytest.mark.parametrize("mode", EmbeddedAws.MODES)
def test_each_mode_serves_resets_and_stops(mode):
    aws = EmbeddedAws(mode=mode).start()
    try:
        aws.reset()  # in-thread modes share this process's moto: start from nothing whatever ran before
        sqs = aws.cloud().client("sqs")
        sqs.create_queue(QueueName="one")
        assert len(sqs.list_queues().get("QueueUrls", [])) == 1
        aws.reset()
        assert sqs.list_queues().get("QueueUrls", []) == []
        proc = aws._proc._proc if aws._proc else None
    finally:
        aws.stop()
    assert aws.url is None
    if mode == "process":
        assert proc.poll() is not None, "the server process outlived stop()"


def test_process_servers_keep_separate_state():
    with EmbeddedAws() as a, EmbeddedAws() as b:
        a.cloud().client("sqs").create_queue(QueueName="only-in-a")
        assert b.cloud().client("sqs").list_queues().get("QueueUrls", []) == []


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(BackendError, match="unknown embedded mode 'docker'"):
        EmbeddedAws(mode="docker")


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_the_server_counts_requests_by_operation_and_a_reset_zeroes_them(mode):
    with EmbeddedAws(mode=mode) as aws:
        cloud = aws.cloud()
        sqs = cloud.client("sqs")
        url = sqs.create_queue(QueueName="counted.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        assert sqs.receive_message(QueueUrl=url).get("Messages") is None
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")
        assert len(sqs.receive_message(QueueUrl=url)["Messages"]) == 1
        cloud.client("dynamodb").list_tables()
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="counted-bucket")
        s3.put_object(Bucket="counted-bucket", Key="k", Body=b"1")
        link = s3.generate_presigned_url("get_object", Params={"Bucket": "counted-bucket", "Key": "k"}, ExpiresIn=60)
        with urllib.request.urlopen(link) as resp:  # signed in its query string, not a header
            assert resp.read() == b"1"
        assert aws.requests() == {"sqs CreateQueue": 1, "sqs ReceiveMessage (empty)": 1, "sqs SendMessage": 1,
                                  "sqs ReceiveMessage": 1, "dynamodb ListTables": 1, "s3 PUT": 2, "s3 GET": 1}
        aws.reset()
        assert aws.requests() == {}


def test_the_werkzeug_server_does_not_count():
    with EmbeddedAws(mode="werkzeug") as aws:
        assert aws.requests() is None


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_cors_headers_come_from_a_bucket_s_rules_as_on_aws_not_on_every_answer(mode):
    # moto's blanket CORS answered every origin; AWS answers only the origins a bucket's CORS rules allow
    with EmbeddedAws(mode=mode) as aws:
        aws.reset()
        cloud = aws.cloud()
        sqs = cloud.client("sqs")
        url = sqs.create_queue(QueueName="no-cors")["QueueUrl"]
        assert "access-control-allow-origin" not in sqs.receive_message(QueueUrl=url)["ResponseMetadata"]["HTTPHeaders"]
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="cors-bucket")
        s3.put_bucket_cors(Bucket="cors-bucket", CORSConfiguration={"CORSRules": [
            {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://app.example.com"]}]})
        s3.put_object(Bucket="cors-bucket", Key="a.png", Body=b"x")
        link = s3.generate_presigned_url("get_object", Params={"Bucket": "cors-bucket", "Key": "a.png"}, ExpiresIn=60)
        allowed = {}
        for origin in ("https://app.example.com", "https://elsewhere.example.com"):
            with urllib.request.urlopen(urllib.request.Request(link, headers={"Origin": origin})) as resp:
                assert resp.read() == b"x"
                allowed[origin] = resp.headers.get("Access-Control-Allow-Origin")
        assert allowed == {"https://app.example.com": "https://app.example.com",
                           "https://elsewhere.example.com": None}

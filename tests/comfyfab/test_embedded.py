"""The embedded backend's ways to host moto behave the same from the client's side."""

from __future__ import annotations

import importlib.util
import os
import socket
import urllib.request
from urllib.parse import urlsplit

import pytest

from comfyfab.cloud import BackendError, EmbeddedAws
from comfyfab.moto_host import SERVERS, default_server

HAS_UWSGI = importlib.util.find_spec("pyuwsgi") is not None
needs_server = {"uwsgi": pytest.mark.skipif(not HAS_UWSGI, reason="pyuwsgi is not installed")}
# each process server, then the in-thread modes
HOSTS = [pytest.param("process", s, id=f"process-{s}", marks=needs_server.get(s, ())) for s in SERVERS] + \
    [pytest.param(m, None, id=m) for m in EmbeddedAws.MODES if m != "process"]
PROCESS_SERVERS = [p for p in HOSTS if p.values[0] == "process"]
COUNTING = [p for p in HOSTS if p.values[0] != "werkzeug"]


def test_uwsgi_serves_by_default_where_it_is_installed_and_says_so():
    assert default_server() == ("uwsgi" if HAS_UWSGI else "waitress")
    assert EmbeddedAws().describe() == f"moto behind {default_server()} in a child process"
    assert EmbeddedAws(mode="thread").server is None


@pytest.mark.parametrize("mode,server", HOSTS)
def test_each_mode_serves_resets_and_stops(mode, server):
    aws = EmbeddedAws(mode=mode, server=server).start()
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


@pytest.mark.parametrize("mode,server", PROCESS_SERVERS)
def test_a_ctrl_c_meant_for_the_parent_does_not_reach_the_server_process(mode, server):
    # a terminal's Ctrl-C goes to its foreground process group: the server must outlive it, for the parent
    # drains its workers against it first (uWSGI quits at once on SIGINT), then stops it by closing its stdin
    with EmbeddedAws(mode=mode, server=server) as aws:
        assert os.getsid(aws.pid) == aws.pid  # a session, and so a process group, of its own
        assert os.getpgid(aws.pid) != os.getpgid(0)


def test_process_servers_keep_separate_state():
    with EmbeddedAws() as a, EmbeddedAws() as b:
        a.cloud().client("sqs").create_queue(QueueName="only-in-a")
        assert b.cloud().client("sqs").list_queues().get("QueueUrls", []) == []


def test_unknown_mode_or_server_is_a_clear_error():
    with pytest.raises(BackendError, match="unknown embedded mode 'docker'"):
        EmbeddedAws(mode="docker")
    with pytest.raises(BackendError, match="unknown embedded server 'nginx'; choose one of uwsgi, waitress"):
        EmbeddedAws(server="nginx")
    with pytest.raises(BackendError, match="the thread mode takes none"):
        EmbeddedAws(mode="thread", server="waitress")


@pytest.mark.parametrize("mode,server", PROCESS_SERVERS)
def test_a_put_that_expects_100_continue_is_told_to_go_on_before_it_sends_its_body(mode, server):
    # botocore sends every S3 PutObject this way and holds the body back for up to a second unless the
    # server says "100 Continue"; a server that never says it makes each upload wait out that second.
    with EmbeddedAws(mode=mode, server=server) as aws:
        aws.cloud().client("s3").create_bucket(Bucket="expecting-bucket")
        where = urlsplit(aws.url)
        body = b"the body"
        with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
            conn.sendall(b"PUT /expecting-bucket/k HTTP/1.1\r\nHost: " + where.netloc.encode()
                         + b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            interim = conn.recv(4096)  # times out (an error) where no interim answer comes
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
            conn.sendall(body)
            final = b""
            while b"\r\n\r\n" not in final:
                final += conn.recv(4096)
        assert final.split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 "), final  # the upload's own answer follows
        # unsigned, so moto stores it as anyone's; what matters is that the body arrived whole
        assert aws.cloud().client("s3").get_object(Bucket="expecting-bucket", Key="k")["Body"].read() == body


@pytest.mark.parametrize("mode,server", COUNTING)
def test_the_server_counts_requests_by_operation_and_a_reset_zeroes_them(mode, server):
    with EmbeddedAws(mode=mode, server=server) as aws:
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


@pytest.mark.parametrize("mode,server", COUNTING)
def test_cors_headers_come_from_a_bucket_s_rules_as_on_aws_not_on_every_answer(mode, server):
    # moto's blanket CORS answered every origin; AWS answers only the origins a bucket's CORS rules allow
    with EmbeddedAws(mode=mode, server=server) as aws:
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

"""Under concurrent callers, moto keeps the promises SQS and DynamoDB make.

These drive moto's models from several threads with the interpreter switching
threads every microsecond, so that each read-then-write in moto is likely to
be interleaved.  Without :mod:`comfyfab.moto_threads` (moto 5.2.5), the runs
that found the races lost 6 of 3,000 sent messages, delivered 127 twice,
raised 15 "Set changed size during iteration" errors, and let 273 of 300
conditional updates succeed twice; run with the locks left out, the two race
tests below fail (dozens of errors; keys created two and four times).  With
the locks, each passed on every run.
"""

from __future__ import annotations

import sys
import threading
import uuid

import pytest

from comfyfab import moto_threads

ACCOUNT = "000000000042"  # fake; a moto account of these tests' own


@pytest.fixture(autouse=True)
def locked_and_switching_often():
    assert moto_threads.apply() is True  # moto changed shape if this fails: the locks stepped aside
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _run(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)


def _fifo(name: str):
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[ACCOUNT]["us-east-1"]
    name = f"{name}-{uuid.uuid4().hex[:8]}.fifo"
    return backend, name, backend.create_queue(name, FifoQueue="true")


def test_no_message_is_lost_or_delivered_twice_while_others_are_deleted():
    backend, name, queue = _fifo("race")
    per_sender, senders, receivers = 600, 4, 4
    sent: set[str] = set()
    received: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    senders_done = threading.Event()

    def send(k: int) -> None:
        for i in range(per_sender):
            job_id = str(uuid.uuid4())
            backend.send_message(name, job_id, group_id=f"g{i % 16}", deduplication_id=job_id)
            with lock:
                sent.add(job_id)

    def receive_and_delete() -> None:
        empty_after_senders = 0
        while empty_after_senders < 20:
            try:
                got = backend.receive_message(name, 1, 0, 30)
                for m in got:
                    with lock:
                        received.append(m.body)
                    backend.delete_message(name, m.receipt_handle)
            except Exception as exc:  # moto's races surface as exceptions too; count them
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if not got and senders_done.is_set():
                empty_after_senders += 1

    threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    takers = [threading.Thread(target=receive_and_delete) for _ in range(receivers)]
    for t in threads + takers:
        t.start()
    for t in threads:
        t.join()
    senders_done.set()
    for t in takers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in takers)

    assert errors == []
    assert len(sent) == per_sender * senders
    assert len(received) == len(set(received)), "a FIFO message was delivered to two consumers"
    assert set(received) == sent, f"{len(sent - set(received))} sent messages vanished"
    assert queue._messages == []


def _poll(backend, name: str, wait_s: int = 5) -> tuple[threading.Thread, list[str]]:
    """A long poll started in a thread of its own; the bodies it receives land in the list."""
    got: list[str] = []
    started = threading.Event()

    def poll() -> None:
        started.set()
        got.extend(m.body for m in backend.receive_message(name, 1, wait_s, 30))

    t = threading.Thread(target=poll)
    t.start()
    started.wait()
    return t, got


def test_a_long_poll_does_not_hold_up_a_send():
    # The receive waits on the queue's condition, which lets go of the lock.
    backend, name, _ = _fifo("poll")
    t, got = _poll(backend, name)
    backend.send_message(name, "hello", group_id="g", deduplication_id="d1")
    t.join(timeout=10)
    assert got == ["hello"]


def _jobs_table(backend):
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    backend.create_table(name, schema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
                         throughput=None, attr=[{"AttributeName": "jobId", "AttributeType": "S"}],
                         global_indexes=None, indexes=None, streams=None, billing_mode="PAY_PER_REQUEST",
                         sse_specification=None, tags=[], deletion_protection_enabled=False, warm_throughput=None)
    return name


def test_a_conditional_write_passes_once_whoever_races_for_it():
    from moto.dynamodb.exceptions import ConditionalCheckFailed
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[ACCOUNT]["us-east-1"]
    table = _jobs_table(backend)
    keys = [f"job-{i}" for i in range(150)]
    created = {k: 0 for k in keys}
    started = {k: 0 for k in keys}
    lock = threading.Lock()

    def create() -> None:  # the router's "a jobId is accepted once"
        for k in keys:
            try:
                backend.put_item(table, {"jobId": {"S": k}, "status": {"S": "queued"}},
                                 condition_expression="attribute_not_exists(jobId)")
            except ConditionalCheckFailed:
                continue
            with lock:
                created[k] += 1

    def start(worker: str) -> None:  # "queued -> running" claimed by one worker
        for k in keys:
            try:
                backend.update_item(table, {"jobId": {"S": k}}, "SET #s = :r, #w = :w",
                                    {"#s": "status", "#w": "worker"},
                                    {":q": {"S": "queued"}, ":r": {"S": "running"}, ":w": {"S": worker}},
                                    condition_expression="#s = :q")
            except ConditionalCheckFailed:
                continue
            with lock:
                started[k] += 1

    _run([threading.Thread(target=create) for _ in range(4)])
    _run([threading.Thread(target=start, args=(f"w{i}",)) for i in range(4)])
    assert set(created.values()) == {1}
    assert set(started.values()) == {1}


def test_a_queue_named_by_keyword_is_locked_too():
    # moto's request handlers pass queue_name by keyword (ChangeMessageVisibility does)
    backend, name, queue = _fifo("kw")
    backend.send_message(name, "m", group_id="g", deduplication_id="d")
    [m] = backend.receive_message(name, 1, 0, 30)
    seen = []
    real = queue._messages_lock

    class Spy:
        def __enter__(self):
            seen.append(True)
            return real.__enter__()

        def __exit__(self, *exc):
            return real.__exit__(*exc)

        def notify_all(self):  # a visibility change wakes the queue's long polls
            real.notify_all()

    queue._messages_lock = Spy()
    try:
        backend.change_message_visibility(queue_name=name, receipt_handle=m.receipt_handle, visibility_timeout=0)
    finally:
        queue._messages_lock = real
    assert seen == [True]


def test_unknown_queue_still_gets_moto_s_own_error():
    from moto.sqs.exceptions import QueueDoesNotExist
    from moto.sqs.models import sqs_backends

    with pytest.raises(QueueDoesNotExist):
        sqs_backends[ACCOUNT]["us-east-1"].receive_message("no-such-queue.fifo", 1, 0, 30)


def test_apply_wraps_each_method_once():
    from moto.sqs.models import Queue

    first = Queue.delete_message
    assert moto_threads.apply() is True
    assert Queue.delete_message is first
    layers, f = [], first  # moto's own method under one lock (and moto_fast's index, which takes the same lock)
    while hasattr(f, "__wrapped__"):
        layers.append(f.__code__.co_filename)
        f = f.__wrapped__
    assert sum(path.endswith("moto_threads.py") for path in layers) == 1
    assert f.__code__.co_filename.endswith("sqs/models.py")


@pytest.mark.parametrize("frees", ["a send to another group", "the delete of the message in flight"])
def test_a_long_poll_on_a_held_group_lets_go_of_the_queue_and_takes_what_becomes_receivable(frees):
    # g's first message is in flight, so its second is visible but cannot be received: the poll must wait,
    # and while it waits the queue's sends and deletes must go through (race 4 in comfyfab.moto_threads).
    import time

    backend, name, queue = _fifo("held")
    backend.send_message(name, "first", group_id="g", deduplication_id="d1")
    (held,) = backend.receive_message(name, 1, 0, 30)
    backend.send_message(name, "second", group_id="g", deduplication_id="d2")
    t, got = _poll(backend, name)
    time.sleep(0.2)  # the poll is in its wait
    if frees == "a send to another group":
        backend.send_message(name, "other", group_id="h", deduplication_id="d3")
        expected = ["other"]
    else:
        backend.delete_message(name, held.receipt_handle)
        expected = ["second"]
    t.join(timeout=10)
    assert got == expected, "the poll returned what became receivable while it waited, not empty at its end"

"""Thread safety for moto's SQS queues and DynamoDB writes, applied by the embedded backend.

The embedded AWS serves requests on several threads (waitress), and moto's
models were written for one caller at a time.  Three races matter to a
pipeline that sends, receives and deletes at the same time:

1. **A send lost to a delete.**  ``Queue.delete_message`` builds a new list of
   the queue's messages without the deleted one and then replaces the old list.
   A message that a concurrent ``SendMessage`` appended in between is in the old
   list only, so it disappears: the sender got a ``MessageId``, and no receiver
   ever sees the message.  This is how a bench job was accepted (202, record
   ``queued``) and then never ran, with no message left in any queue or DLQ.
2. **One message received twice.**  ``ReceiveMessage`` checks that a message
   is visible and then marks it received; two receives in between both take
   it.  A FIFO queue delivers a message to one consumer at a time.
   ``ReceiveMessage`` also reads the set of in-flight messages while other
   threads change it, which can fail with "Set changed size during iteration"
   (a 500 to the caller).
3. **Conditional writes that are not atomic.**  DynamoDB's ``PutItem`` and
   ``UpdateItem`` read the item, evaluate the condition, then write.  Two
   concurrent writes can both pass a condition that only one may pass, such as
   ``attribute_not_exists(jobId)`` or "status is queued".

Each queue's operations now run under the lock that moto already keeps per
queue (``Queue._messages_lock``, a condition variable over a re-entrant lock).
DynamoDB's writes, and the scans and queries that iterate a table, run under
one lock.  These are operations of a millisecond or less that the interpreter
lock already runs one at a time, so nothing becomes slower that could have run
in parallel.

Holding a queue's lock for a whole receive brought a fourth problem:

4. **A long poll that spins holding the lock.**  moto's long poll waits on the
   queue's condition (letting the lock go) only while the queue has no visible
   message.  On a FIFO queue whose visible messages all belong to groups with
   a message in flight, nothing can be received, yet that wait returns at once:
   the receive went round its loop until its wait time ran out, on a whole
   core, holding the lock.  Sends and deletes on that queue (among them the
   delete that would free the group) waited for it: under the bench's router
   sweep, SendMessage took up to a second.  A long poll is now a pass that
   does not wait, then a wait on the condition, with the lock let go, until a
   send, a delete or a visibility change on the queue wakes it or a quarter of
   a second passes (a visibility timeout runs out unannounced), then another
   pass, until a message is received or the wait time is over.

What SQS and DynamoDB promise does not change; moto now keeps those promises
under concurrent callers.  Each wrapper checks that moto still has the shape
it relies on, and otherwise warns and leaves moto alone.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from typing import Any, Callable

from .moto_fast import _source

log = logging.getLogger(__name__)

_applied: bool | None = None   # None until apply() has run; then whether every lock is in place
_DDB_LOCKED = ("put_item", "update_item", "delete_item", "transact_write_items", "execute_statement",
               "execute_transaction", "batch_execute_statement", "scan", "query")
_ddb_lock = threading.RLock()


def _under(lock_of: Callable[..., Any], notify: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a method so that it runs holding ``lock_of(*args, **kwargs)`` (or unlocked when that is None).
    With ``notify``, it then wakes the queue's long polls: what the method did (a delete, a visibility
    change) may have made a message receivable."""
    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            lock = lock_of(*args, **kwargs)
            if lock is None:
                return method(*args, **kwargs)
            with lock:
                try:
                    return method(*args, **kwargs)
                finally:
                    if notify:
                        lock.notify_all()
        return wrapper
    return wrap


RECHECK_S = 0.25  # a waiting long poll looks again this often: a visibility timeout runs out unannounced


def _receive_waiting_unlocked(receive: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``receive_message`` under the queue's lock, its long poll a wait that lets the lock go
    (race 4 above)."""
    @functools.wraps(receive)
    def wrapper(backend: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any,
                **kwargs: Any) -> Any:
        lock = _named_queue_lock(backend, queue_name)
        if lock is None:  # unknown queue: moto's own call raises the proper error
            return receive(backend, queue_name, count, wait_seconds_timeout, *args, **kwargs)
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        with lock:
            while True:
                got = receive(backend, queue_name, count, 0, *args, **kwargs)
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                lock.wait(min(left, RECHECK_S))
    return wrapper


def _own_lock(queue: Any, *_: Any, **__: Any) -> Any:
    return queue._messages_lock


def _named_queue_lock(backend: Any, *args: Any, **kwargs: Any) -> Any:
    """The lock of the queue a backend method names, by position or (as moto's handlers do) by keyword."""
    try:
        return backend.get_queue(args[0] if args else kwargs["queue_name"])._messages_lock
    except Exception:  # unknown queue: moto's own call raises the proper error
        return None


def apply() -> bool:
    """Install the locks once per process; returns whether all of them are in place."""
    global _applied
    if _applied is None:
        _applied = _lock_queues() & _lock_tables()
    return _applied


def _lock_queues() -> bool:
    try:
        from moto.sqs import models
    except ImportError:  # pragma: no cover - moto is a dependency
        return False
    queue_cls, backend_cls = models.Queue, models.SQSBackend
    queue_methods = ("add_message", "delete_message")
    backend_methods = ("receive_message", "change_message_visibility", "purge_queue")  # each wrapped below
    receive_args = list(inspect.signature(backend_cls.receive_message).parameters)[:4]
    shaped = (all(callable(getattr(queue_cls, m, None)) for m in queue_methods)
              and all(callable(getattr(backend_cls, m, None)) for m in backend_methods)
              and callable(getattr(backend_cls, "get_queue", None))
              and "_messages_lock" in _source(queue_cls.__init__)
              and receive_args == ["self", "queue_name", "count", "wait_seconds_timeout"])
    if not shaped:
        log.warning("moto's SQS model changed shape; its queues are left without locks")
        return False
    queue_cls.add_message = _under(_own_lock)(queue_cls.add_message)  # moto's add_message wakes the polls itself
    queue_cls.delete_message = _under(_own_lock, notify=True)(queue_cls.delete_message)
    backend_cls.receive_message = _receive_waiting_unlocked(backend_cls.receive_message)
    backend_cls.change_message_visibility = _under(_named_queue_lock, notify=True)(
        backend_cls.change_message_visibility)
    backend_cls.purge_queue = _under(_named_queue_lock)(backend_cls.purge_queue)
    return True


def _lock_tables() -> bool:
    try:
        from moto.dynamodb.models import DynamoDBBackend
    except ImportError:  # pragma: no cover - moto is a dependency
        return False
    missing = [m for m in _DDB_LOCKED if not callable(getattr(DynamoDBBackend, m, None))]
    if missing:
        log.warning("moto's DynamoDB backend has no %s; its writes are left without a lock", ", ".join(missing))
        return False
    for m in _DDB_LOCKED:
        setattr(DynamoDBBackend, m, _under(lambda *_, **__: _ddb_lock)(getattr(DynamoDBBackend, m)))
    return True

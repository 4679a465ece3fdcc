"""Speed fixes for moto, applied by the embedded backend.

moto (5.2) answers every call correctly but some of them in time that grows
with the queue, and every request repeats work whose answer never changes:

1. ``SendMessage`` and ``SendMessageBatch`` read ``Queue.attributes`` three
   times per message only to learn ``ContentBasedDeduplication``.  That
   property also computes the three ``ApproximateNumberOfMessages*`` counts,
   each a scan of every message in the queue.  With 2,000 messages queued a
   send took 181 ms, and 2 ms with the fix (``python -m comfyfab.moto_fast``).
   ``ReceiveMessage`` does the same for each message it returns, only to read
   ``MessageRetentionPeriod``.  During a send and during that check the
   counts are left out of ``Queue.attributes``; every other attribute is
   computed by moto's own code, and ``GetQueueAttributes`` is untouched.
2. Each message's ``visible`` / ``delayed`` check builds a ``datetime`` to
   read the clock.  ``moto.sqs.models.unix_time_millis`` is replaced by the
   same value read from :func:`time.time` (epoch milliseconds, as before).
3. Per request, moto lists its own package directory (about 120 ``stat``
   calls) to map a host to a service, lists the response class's methods
   with :func:`inspect.getmembers`, and converts the same action and attribute names
   from CamelCase with a character loop.  Those three answers are the same
   every time; they are computed once and remembered.
4. ``UpdateItem`` parses its update expression twice per call (once to
   check the names and values it uses, once to apply it), and a parse was a
   seventh of moto's own time for the job store's updates.  The parse of an
   expression string is remembered: every use of the tree either only reads
   it or works on a deep copy (moto's ``Validator`` copies it first).
5. Every lookup of a service's backend for an account (several per request)
   checks that the service is on moto's list of backends to reset by
   comparing it with every service on that list, a Python ``__eq__`` each.
   Once the account's backend exists the service is on the list (a reset
   empties both together), so the check is skipped then.
6. ``UpdateItem`` then runs ten passes over a copy of the expression's tree.
   Each pass asked its processor for the node types it handles twice per
   node, and the processor built that mapping anew each time; it is now
   built once per pass.  The copy itself, a ``copy.deepcopy`` of some forty
   nodes, is made by a pickle round trip, three times faster for the same tree.

7. Each request looks up the backend for its Host header (twice) by
   matching the host against some 160 URL patterns in turn.  The answer for
   a host never changes, so it is found once per distinct host.
8. Every response carries a 52-character request id drawn with one
   ``random.choice`` per character; moto's random strings and hex ids are now
   drawn with one ``choices`` call, from the same (seedable) generator.
9. moto runs its Flask apps in debug mode, in which Flask builds a new class
   on every request to explain form-encoding mistakes made in a browser.  The
   embedded server's apps run with debug mode off (an unexpected error still
   answers 500, logged by Flask instead of the server).

Fixes 7 to 9 took an empty ``ReceiveMessage`` through moto's WSGI app from
about 480 to about 340 µs on this machine (each tree timed four times, in turn).
Fix 12 (see :func:`create_backend_app`) leaves out moto's blanket CORS headers,
which AWS does not send; an S3 bucket's own CORS rules still apply.

10. Every ``PutItem`` and ``UpdateItem`` with a condition parses its
    condition expression twice (once to list the names and values it uses,
    once to evaluate it), and the parse was a quarter of an update's time.
    The parse is remembered per expression and the names and values whose
    placeholders occur in it (a parse looks up no others; a job store's
    conditions repeat a handful of those, while the values they set, such as
    a timestamp, differ on every call); the tree it returns is only read, by
    evaluation, and the names and values it found are handed out as copies.
11. Three of ``UpdateItem``'s ten validation passes check only the shape of
    the expression: one SET/ADD/REMOVE clause each, no overlapping paths, no
    update of a key attribute.  Their answer depends on the expression, its
    names and the table's keys, never on the item or the values, so a
    combination that passed them once skips them afterwards.  One of the
    three searched the tree from every node, a third of the validation.

Fixes 10 and 11 took the job store's update, client and HTTP included, from
6.9 to 5.0-5.6 ms (``python -m comfyfab.moto_fast``, each tree run twice, in
turn); moto's own part went from about 2.3 to 1.1-1.5 ms.

13. ``ReceiveMessage`` and ``DeleteMessage`` took time that grows with the
    queue: a receive first built the list of every visible message (two
    clock reads per message) to take the first one or few, and a delete
    searched every message twice for its receipt handle, building a list of
    each message's handles to do so.  The visible messages are now found as
    they are read, so a receive stops at the first it can deliver; a receipt
    handle leads straight to its message (an index kept as messages are
    received); and a message's handle check reads its handles where they are
    instead of copying them.  With 8,000 messages queued, a receive went from
    7.8-12.8 to 3.0-3.6 ms and a delete from 5.6-9.2 to 2.4-2.9 ms, as with
    50 queued (3.6-5.3 and 2.6-4.2 ms before and after alike; the embedded
    process, client included, each tree run twice in turn; ``comfyfab bench
    queues`` measures them).

14. ``GetQueueAttributes`` computed all of a queue's attributes, three
    counts among them (each a scan of every message, reading the clock twice
    per message), three times for every attribute name asked for: the
    router's question (two names) scanned the queue 18 times.  The attributes are
    now computed once per call, and each count reads the clock once.  With
    8,000 queued the router's call went from 43-80 to 3.9-4.0 ms (the embedded
    process, client included).

Nothing about what moto answers changes: the FIFO, deduplication, visibility
and redrive tests run on this backend.  Each fix checks that moto still has
the shape it relies on and otherwise leaves moto alone (slower, still right).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
           "ApproximateNumberOfMessagesNotVisible")
_uncounted: contextvars.ContextVar[bool] = contextvars.ContextVar("comfyfab_moto_uncounted", default=False)
_looked_up: contextvars.ContextVar[dict[tuple[int, bool], Any] | None] = contextvars.ContextVar(
    "comfyfab_moto_looked_up", default=None)
_applied = False


class _WithoutCounts:
    """The queue as moto's ``attributes`` sees it, minus the three counts."""

    def __init__(self, queue: Any):
        self.__dict__["_q"] = queue

    @property
    def BASE_ATTRIBUTES(self) -> list[str]:
        return [a for a in self._q.BASE_ATTRIBUTES if a not in _COUNTS]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._q, name)


def apply() -> bool:
    """Install the fixes once per process; returns whether they are in place."""
    global _applied
    if _applied:
        return True
    try:
        from moto.sqs import models
    except ImportError:  # pragma: no cover - moto is a dependency
        return False
    queue_cls, backend_cls = models.Queue, models.SQSBackend
    attrs = queue_cls.__dict__.get("attributes")
    shaped = (isinstance(attrs, property) and all(c in queue_cls.BASE_ATTRIBUTES for c in _COUNTS)
              and callable(getattr(backend_cls, "send_message", None))
              and callable(getattr(backend_cls, "send_message_batch", None))
              and callable(getattr(models, "unix_time_millis", None)))
    if not shaped:
        log.warning("moto's SQS model changed shape; its speed fixes are not applied (results are unaffected)")
        return False

    full = attrs.fget

    def attributes(self: Any) -> dict[str, Any]:
        uncounted = _uncounted.get()
        seen, key = _looked_up.get(), (id(self), uncounted)
        if seen is not None and key in seen:  # inside GetQueueAttributes (fix 14): computed once per call
            return seen[key]
        got = full(_WithoutCounts(self)) if uncounted else full(self)
        if seen is not None:
            seen[key] = got
        return got

    def uncounted(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _uncounted.set(True)
            try:
                return method(*args, **kwargs)
            finally:
                _uncounted.reset(token)
        return wrapper

    slow_clock = models.unix_time_millis

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else slow_clock(dt)

    _remember_constant_answers()
    _remember_update_parses()
    _quicker_update_validation()
    _remember_condition_parses()
    _skip_passed_shape_checks()
    _quicker_random_strings()
    queue_cls.attributes = property(attributes)
    backend_cls.send_message = uncounted(backend_cls.send_message)
    backend_cls.send_message_batch = uncounted(backend_cls.send_message_batch)
    if callable(getattr(backend_cls, "is_message_valid_based_on_retention_period", None)):
        backend_cls.is_message_valid_based_on_retention_period = uncounted(
            backend_cls.is_message_valid_based_on_retention_period)
    _skip_known_backend_registration()
    _index_receipt_handles()
    _quicker_counts()
    models.unix_time_millis = unix_time_millis
    _applied = True
    return True


def _remember_constant_answers() -> None:
    """Fix 3: memoise three pure functions moto calls on every request."""
    from moto import backends
    from moto.core import responses
    from moto.sqs import models

    modules = tuple(backends.list_of_moto_modules())  # the package's directories: fixed once installed
    backends.list_of_moto_modules = lambda: modules
    if callable(getattr(responses, "method_names_from_class", None)):
        responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    for module in (models, responses):  # SQS's attribute names, and every request's action name
        if callable(getattr(module, "camelcase_to_underscores", None)):
            module.camelcase_to_underscores = functools.lru_cache(maxsize=4096)(module.camelcase_to_underscores)
    _remember_backend_for_host()


def _remember_backend_for_host() -> None:
    """Fix 7: the backend for a Host header is found once per distinct host."""
    from moto.moto_server import werkzeug_app

    app_cls = werkzeug_app.DomainDispatcherApplication
    lookup = app_cls.__dict__.get("get_backend_for_host")
    source = _source(lookup)
    # a pure function of the host while it reads only the fixed URL index and module list
    if not callable(lookup) or "self.backend_url_patterns" not in source or "environ" in source:
        log.warning("moto's host dispatch changed shape; its lookup cache is not applied")
        return
    found: dict[Any, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if self.backend_url_patterns is not werkzeug_app.backend_index.backend_url_patterns:
            return get_backend_for_host.__wrapped__(self, host)  # an app given other patterns: no shared answers
        try:
            return found[host]
        except KeyError:
            answer = found[host] = get_backend_for_host.__wrapped__(self, host)
            return answer

    get_backend_for_host.__wrapped__ = lookup  # type: ignore[attr-defined]
    app_cls.get_backend_for_host = get_backend_for_host


def create_backend_app(service: Any) -> Any:
    """Fixes 9 and 12: moto's Flask app for one service, with Flask's debug mode off and without the
    blanket CORS headers.

    moto turns debug mode on, in which Flask builds a new class on every
    request to explain form-encoding mistakes made in a browser.  An
    unexpected error still answers 500; with debug off Flask logs it itself.

    moto also wraps every app in flask_cors (unless ``MOTO_DISABLE_GLOBAL_CORS``
    is set where moto is imported), which adds ``Access-Control-Allow-Origin: *``
    to every answer.  AWS sends CORS headers only where an S3 bucket's CORS rules
    ask for them, and moto's S3 applies those rules itself; no SDK reads the
    headers.  The wrapper was 5 % of the embedded server's CPU under the bench.
    """
    from moto.moto_server import werkzeug_app

    if hasattr(werkzeug_app, "DISABLE_GLOBAL_CORS"):
        werkzeug_app.DISABLE_GLOBAL_CORS = True
    app = werkzeug_app.create_backend_app(service)
    app.debug = False
    return app


def _quicker_random_strings() -> None:
    """Fix 8: moto's random strings drawn with one ``choices`` call, not one ``choice`` per character."""
    import string

    from moto.moto_api._internal.moto_random import HEX_CHARS, MotoRandom

    if "self.choice(pool)" not in _source(MotoRandom.get_random_string):
        log.warning("moto's random strings changed shape; their speed fix is not applied")
        return

    def get_random_string(self: Any, length: int = 20, include_digits: bool = True,
                          lower_case: bool = False) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    def get_random_hex(self: Any, length: int = 8) -> str:
        return "".join(map(str, self.choices(HEX_CHARS, k=length)))

    MotoRandom.get_random_string = get_random_string
    if "self.choice(HEX_CHARS)" in _source(MotoRandom.get_random_hex):
        MotoRandom.get_random_hex = get_random_hex


def _skip_known_backend_registration() -> None:
    """Fix 5: an account whose backend exists needs no registration check."""
    from moto.core.base_backend import BackendDict

    register = BackendDict.__dict__.get("_create_account_specific_backend")
    if not callable(register) or "_instances" not in _source(BackendDict.reset):
        log.warning("moto's backend registry changed shape; its lookup fix is not applied")
        return

    def lookup(self: Any, account_id: str) -> None:
        if not dict.__contains__(self, account_id):  # created, or emptied by a reset: register as moto does
            register(self, account_id)

    BackendDict._create_account_specific_backend = lookup


def _remember_update_parses() -> None:
    """Fix 4: one parse per update expression string (the trees are read, or copied before use)."""
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import Validator

    make = UpdateExpressionParser.__dict__.get("make")
    # only where moto still copies the tree before validating it
    if not isinstance(make, classmethod) or "deepcopy(expression)" not in _source(Validator.__init__):
        log.warning("moto's DynamoDB expression parser changed shape; its parse cache is not applied")
        return
    def make_marked(expression_str: str) -> Any:
        tree = make.__func__(UpdateExpressionParser, expression_str)
        try:  # fix 11 knows a remembered tree by its expression
            tree._comfyfab_expression = expression_str
        except AttributeError:
            pass
        return tree

    parse = functools.lru_cache(maxsize=1024)(make_marked)
    UpdateExpressionParser.make = classmethod(lambda cls, expression_str: parse(expression_str))


def _quicker_update_validation() -> None:
    """Fix 6: each validation pass builds its processor's type map once; the tree copy is a pickle round trip."""
    import copy
    import pickle

    from moto.dynamodb.parsing import ast_nodes, validators

    traverser = ast_nodes.DepthFirstTraverser

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    overridden = [c for c in subclasses(traverser)
                  if {"nodes_to_be_processed", "process"} & set(vars(c))]
    shaped = (all(callable(traverser.__dict__.get(n)) for n in ("_processing_map", "nodes_to_be_processed", "process"))
              and "self.nodes_to_be_processed()" in _source(traverser.traverse_node_recursively)
              and getattr(validators, "deepcopy", None) is copy.deepcopy
              and "deepcopy(expression)" in _source(validators.Validator.__init__))
    if overridden or not shaped:
        log.warning("moto's DynamoDB expression validators changed shape; their speed fix is not applied")
        return

    def processing_map(self: Any) -> dict[type, Any]:
        # moto's processors answer a fixed map of their own bound methods
        found = self.__dict__.get("_comfyfab_map")
        if found is None:
            found = self.__dict__["_comfyfab_map"] = self._processing_map()
        return found

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        found = self.__dict__.get("_comfyfab_types")
        if found is None:
            found = self.__dict__["_comfyfab_types"] = tuple(processing_map(self))
        return found

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in processing_map(self).items():
            if isinstance(node, class_key):
                return processor(node)

    def copy_tree(x: Any, memo: Any = None) -> Any:
        if memo is None and isinstance(x, ast_nodes.Node):
            try:
                return pickle.loads(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL))
            except (pickle.PicklingError, TypeError, AttributeError):
                pass
        return copy.deepcopy(x, memo)

    traverser.nodes_to_be_processed = nodes_to_be_processed
    traverser.process = process
    validators.deepcopy = copy_tree


def _frozen(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _mentioned(placeholders: dict[str, Any] | None, expression: str) -> dict[str, Any]:
    """The entries of ``placeholders`` (``#name`` or ``:value`` keys) whose key occurs in ``expression``."""
    return {k: v for k, v in (placeholders or {}).items() if k in expression}


def _remember_condition_parses(size: int = 4096) -> None:
    """Fix 10: one parse per condition expression and the names and values it mentions (the tree is only read)."""
    import pickle

    from moto.dynamodb.comparisons import ConditionExpressionParser

    parse = ConditionExpressionParser.__dict__.get("parse")
    source = _source(ConditionExpressionParser.__init__)
    if not callable(parse) or not all(f"self.{a}" in source for a in (
            "condition_expression", "expression_attribute_names", "expression_attribute_values",
            "expr_attr_names_found", "expr_attr_values_found")):
        log.warning("moto's DynamoDB condition parser changed shape; its parse cache is not applied")
        return
    found: dict[tuple[str, str, str], tuple[Any, list[str], list[str]]] = {}

    @functools.wraps(parse)
    def remembered(self: Any) -> Any:
        if not self.condition_expression:
            return parse(self)
        expression = self.condition_expression
        # only the names and values the expression can refer to: a parse looks up nothing else, and an
        # update's other values (the new timestamp, say) differ on every call
        key = (expression, _frozen(_mentioned(self.expression_attribute_names, expression)),
               _frozen(_mentioned(self.expression_attribute_values, expression)))
        hit = found.get(key)
        if hit is None:
            op = parse(self)  # an invalid expression raises here, every time: only good parses are kept
            try:  # the kept tree is a copy, so it shares no dict with this request's values
                kept = pickle.loads(pickle.dumps(op, protocol=pickle.HIGHEST_PROTOCOL))
            except (pickle.PicklingError, TypeError, AttributeError):
                return op
            if len(found) >= size:
                found.clear()
            found[key] = hit = (kept, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            return op
        op, names, values = hit
        self.expr_attr_names_found, self.expr_attr_values_found = list(names), list(values)
        return op

    ConditionExpressionParser.parse = remembered


def _skip_passed_shape_checks(size: int = 4096) -> None:
    """Fix 11: shape checks that an expression, its names and the table's keys passed once are skipped."""
    from moto.dynamodb.parsing import validators

    update_validator = validators.UpdateExpressionValidator
    shape = tuple(getattr(validators, n, None) for n in (
        "ActionCountValidator", "OverlappingPathsValidator", "UpdateHashRangeKeyValidator"))
    base_init = validators.Validator.__dict__.get("__init__")
    if (None in shape or not callable(base_init)
            or "self.processors = self.get_ast_processors()" not in _source(base_init)
            or "get_ast_processors" not in update_validator.__dict__
            or "validate" in update_validator.__dict__):
        log.warning("moto's DynamoDB update validator changed shape; its shape checks run every time")
        return
    processors = update_validator.__dict__["get_ast_processors"]
    validate = validators.Validator.validate
    passed: set[tuple[str, str, str]] = set()

    def key(self: Any) -> tuple[str, str, str] | None:
        expression = self.__dict__.get("_comfyfab_expression")
        if expression is None:
            return None
        return (expression, _frozen(self.expression_attribute_names),
                _frozen(getattr(self.table, "table_key_attrs", None)))

    def __init__(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        # set before moto's __init__, which asks for the processors (fix 4 marks the trees it remembers)
        self.__dict__["_comfyfab_expression"] = getattr(expression, "_comfyfab_expression", None)
        base_init(self, expression, *args, **kwargs)

    def get_ast_processors(self: Any) -> list[Any]:
        every = processors(self)
        k = key(self)
        if k is not None and k in passed:
            return [p for p in every if not isinstance(p, shape)]
        self.__dict__["_comfyfab_key"] = k  # recorded once this validation passes
        return every

    def validate_once(self: Any) -> Any:
        out = validate(self)
        k = self.__dict__.get("_comfyfab_key")
        if k is not None:
            if len(passed) >= size:  # a long-lived server with ever new expressions stays bounded
                passed.clear()
            passed.add(k)
        return out

    update_validator.__init__ = __init__
    update_validator.get_ast_processors = get_ast_processors
    update_validator.validate = validate_once


class _Visible:
    """``Queue.messages``, found as it is read: its visible messages, in order.

    moto's property builds the whole list, and a receive then takes the first
    message it can deliver.  Iterating stops where the reader stops; ``len``
    and truth (how moto's count and the long poll's wait read it) walk as far
    as they need.  What is walked is a copy of the queue's list taken when the
    property was read, as moto's list was built then: a send or a redrive in
    another thread cannot shift it mid-walk, with or without moto_threads' locks
    (copying the references costs microseconds; the visibility checks were the cost).
    """

    __slots__ = ("_all",)

    def __init__(self, messages: list[Any]):
        self._all = messages.copy()

    def __iter__(self) -> Any:
        return (m for m in self._all if m.visible and not m.delayed)

    def __len__(self) -> int:
        return len([m for m in self._all if m.visible and not m.delayed])

    def __bool__(self) -> bool:
        return any(True for _ in self)


def _index_receipt_handles() -> None:
    """Fix 13: receive and delete in time that does not grow with the queue."""
    import weakref

    from moto.sqs import models

    message_cls, queue_cls = models.Message, models.Queue
    messages = queue_cls.__dict__.get("messages")
    delete = queue_cls.delete_message
    shaped = (isinstance(messages, property)
              and "message.visible and not message.delayed" in _source(messages.fget)
              and "receipt_handle in self.all_receipt_handles" in _source(message_cls.had_receipt_handle)
              and "self.receipt_handle = generate_receipt_handle()" in _source(message_cls.mark_received)
              and "had_receipt_handle" in _source(getattr(delete, "__wrapped__", delete))
              and message_cls.__eq__ is object.__eq__  # list membership is identity (and C-fast)
              and "_messages_lock" in _source(queue_cls.__init__))
    if not shaped:
        log.warning("moto's SQS messages changed shape; receives and deletes still scan the whole queue")
        return
    # every handle a message was given, to the message (a deleted message leaves with its entries)
    holders: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
    mark_received = message_cls.mark_received

    @functools.wraps(mark_received)
    def marked(self: Any, *args: Any, **kwargs: Any) -> None:
        mark_received(self, *args, **kwargs)
        holders[self.receipt_handle] = self

    def had_receipt_handle(self: Any, receipt_handle: str) -> bool:
        return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles

    @functools.wraps(delete)
    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:  # re-entrant: the same lock moto_threads holds around moto's delete
            held = holders.get(receipt_handle)
            every = self._messages
            i = _position(every, held) if receipt_handle not in self.deleted_messages else -1
            if i < 0:
                return delete(self, receipt_handle)  # moto's own answer: deleted already, or not a handle here
            # what moto's delete does for the one message that had the handle (handles are unique)
            self.pending_messages.discard(held)
            self.deleted_messages.update(held.all_receipt_handles)
            self._messages = every[:i] + every[i + 1:]  # a new list, as moto makes: readers keep theirs
            self._messages_lock.notify_all()  # a FIFO group may be free now: wake the long polls

    message_cls.mark_received = marked
    message_cls.had_receipt_handle = had_receipt_handle
    queue_cls.messages = property(lambda self: _Visible(self._messages))
    queue_cls.delete_message = delete_message


_COUNTED = ("approximate_number_of_messages", "approximate_number_of_messages_delayed",
            "approximate_number_of_messages_not_visible")


def _quicker_counts() -> None:
    """Fix 14: ``GetQueueAttributes`` computes a queue's attributes once per call (``Queue.attributes``
    reads the memo this sets up), and counts its messages with one clock read per count."""
    from moto.sqs import models

    message_cls, queue_cls, backend_cls = models.Message, models.Queue, models.SQSBackend
    get_queue_attributes = backend_cls.get_queue_attributes

    @functools.wraps(get_queue_attributes)
    def get_queue_attributes_once(*args: Any, **kwargs: Any) -> Any:
        token = _looked_up.set({})
        try:
            return get_queue_attributes(*args, **kwargs)
        finally:
            _looked_up.reset(token)

    if "queue.attributes" in _source(get_queue_attributes):  # reads them, per name asked for
        backend_cls.get_queue_attributes = get_queue_attributes_once

    visible, delayed = message_cls.__dict__.get("visible"), message_cls.__dict__.get("delayed")
    shaped = (isinstance(visible, property) and isinstance(delayed, property)
              and "current_time > self.visible_at" in _source(visible.fget)
              and "current_time < self.delayed_until" in _source(delayed.fget)
              and all(isinstance(queue_cls.__dict__.get(n), property) for n in _COUNTED))
    if not shaped:
        log.warning("moto's SQS message clock changed shape; its counts read the clock per message")
        return

    def now() -> float:
        return models.unix_time_millis()  # moto's clock, as its visible and delayed read it

    def approximate_number_of_messages(self: Any) -> int:  # visible and not delayed: Queue.messages
        t = now()
        return sum(1 for m in self._messages if t > m.visible_at and not t < m.delayed_until)

    def approximate_number_of_messages_delayed(self: Any) -> int:
        t = now()
        return sum(1 for m in self._messages if t < m.delayed_until)

    def approximate_number_of_messages_not_visible(self: Any) -> int:
        t = now()
        return sum(1 for m in self._messages if not t > m.visible_at)

    for count in (approximate_number_of_messages, approximate_number_of_messages_delayed,
                  approximate_number_of_messages_not_visible):
        setattr(queue_cls, count.__name__, property(count))


def _position(messages: list[Any], message: Any) -> int:
    """Where ``message`` (found by identity) is in ``messages``; -1 when absent or None."""
    if message is None:
        return -1
    try:
        return messages.index(message)
    except ValueError:
        return -1


def _source(fn: Any) -> str:
    import inspect

    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _measure(queued: int = 2000, sends: int = 100, updates: int = 400) -> None:  # pragma: no cover - a benchmark
    """SendMessage with a long queue, and the job store's two conditional updates, on the embedded backend."""
    import json
    import uuid

    from comfyfab.cloud import EmbeddedAws
    from pipeline.jobs import JobRecord, JobStore

    with EmbeddedAws() as aws:  # the fixes are applied in the server's process
        sqs = aws.cloud().client("sqs")
        url = sqs.create_queue(QueueName="m.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        body = json.dumps({"pad": "x" * 2000})
        for phase in ("fill", "measure"):
            n = queued if phase == "fill" else sends
            t0 = time.perf_counter()
            for i in range(n):
                sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=str(i % 64),
                                 MessageDeduplicationId=str(uuid.uuid4()))
            if phase == "measure":
                print(f"SendMessage with {queued} queued: {(time.perf_counter() - t0) / n * 1000:.1f} ms "
                      "(embedded backend, speed fixes on)")
        ddb = aws.cloud().client("dynamodb")
        ddb.create_table(TableName="m", KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        store = JobStore(aws.cloud(), "m")
        ids = [str(uuid.uuid4()) for _ in range(updates)]
        for job_id in ids:
            store.create(JobRecord.model_validate({
                "jobId": job_id, "tenantId": "t", "priority": "standard", "status": "queued", "model": "m",
                "promptHash": "0" * 64, "resolution": [64, 64], "seed": 1, "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z", "ttl": 1}))
        t0 = time.perf_counter()
        for job_id in ids:
            store.start(job_id, "w", 1)
            store.succeed(job_id, "w", ["t/o.png"], "arn:aws:kms:us-east-1:000000000000:key/k")
        print(f"UpdateItem (the job store's start and succeed, client included): "
              f"{(time.perf_counter() - t0) / (2 * updates) * 1000:.2f} ms")
    _measure_app()
    print("receive, delete, send and the queue counts at each depth: comfyfab bench queues")


def _measure_app(calls: int = 2000) -> None:  # pragma: no cover - a benchmark
    """An empty ReceiveMessage through moto's WSGI app in this process: the per-request cost, no network."""
    import io
    import json
    import sys

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    apply()
    app = DomainDispatcherApplication(create_backend_app)

    def call(target: str, body: dict) -> bytes:
        data = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "5000", "HTTP_HOST": "127.0.0.1:5000", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/x-amz-json-1.0",
            "HTTP_X_AMZ_TARGET": target, "HTTP_X_AMZ_DATE": "20260101T000000Z",
            "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=fake/20260101/us-east-1/sqs/aws4_request, "
                                  "SignedHeaders=host;x-amz-date, Signature=fake"}
        return b"".join(app(environ, lambda status, headers, exc_info=None: None))

    url = json.loads(call("AmazonSQS.CreateQueue", {"QueueName": "app.fifo",
                                                    "Attributes": {"FifoQueue": "true"}}))["QueueUrl"]
    receive = {"QueueUrl": url, "MaxNumberOfMessages": 1, "MessageSystemAttributeNames": ["ApproximateReceiveCount"]}
    for _ in range(200):
        call("AmazonSQS.ReceiveMessage", receive)
    t0 = time.perf_counter()
    for _ in range(calls):
        call("AmazonSQS.ReceiveMessage", receive)
    print(f"empty ReceiveMessage through moto's WSGI app (no network): "
          f"{(time.perf_counter() - t0) / calls * 1e6:.0f} us")


if __name__ == "__main__":  # pragma: no cover
    _measure()

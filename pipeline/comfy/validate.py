"""Validation of a ComfyUI API-format prompt against a node catalog.

Pure functions over two JSON documents: the prompt (``{node_id: {"class_type",
"inputs"}}``) and an ``/object_info`` document, so that the stand-in server
and the inference router (which fetches ``/object_info`` from a worker) judge
a graph identically.  The rules, error type names, messages and the response
shape follow ComfyUI's ``execution.validate_prompt``: a graph is checked from
each output node backwards; an output whose upstream has an error is dropped;
when no output survives the prompt is refused with
``prompt_outputs_failed_validation`` and per-node ``node_errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .nodes import PRIMITIVE_TYPES


@dataclass
class ValidationResult:
    """The verdict on a prompt: the top-level error (None when some output
    is valid), the outputs that will run, and errors per node."""

    error: dict[str, Any] | None
    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def body(self) -> dict[str, Any]:
        """ComfyUI's HTTP 400 body: ``{"error": ..., "node_errors": ...}``."""
        return {"error": self.error, "node_errors": self.node_errors}


def _error(kind: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": dict(extra)}


def validate_prompt(prompt: Any, object_info: dict[str, Any]) -> dict[str, Any] | None:
    """ComfyUI's error body for an invalid prompt, or None when it may run."""
    result = check_prompt(prompt, object_info)
    return None if result.ok else result.body()


def check_prompt(prompt: Any, object_info: dict[str, Any]) -> ValidationResult:
    """The full verdict, including node errors of outputs that were dropped."""
    if not isinstance(prompt, dict):
        return ValidationResult(_error("invalid_prompt", "Cannot execute because the prompt is not a JSON object.",
                                       f"received {type(prompt).__name__}"))
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return ValidationResult(_error(
                "invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'"))
        class_type = node["class_type"]
        info = object_info.get(class_type) if isinstance(class_type, str) else None
        if info is None:
            return ValidationResult(_error(
                "missing_node_type",
                f"Node '{class_type}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'", node_id=node_id, class_type=class_type, node_title=class_type))
        if info.get("output_node") is True:
            outputs.append(node_id)
    if not outputs:
        return ValidationResult(_error("prompt_no_outputs", "Prompt has no outputs"))

    checker = _Checker(prompt, object_info)
    good: list[str] = []
    node_errors: dict[str, dict[str, Any]] = {}
    for out in sorted(outputs, key=_node_order):
        valid, _ = checker.node(out)
        if valid:
            good.append(out)
            continue
        for node_id, (node_valid, node_reasons) in checker.validated.items():
            if node_valid or not node_reasons:
                continue
            entry = node_errors.setdefault(node_id, {
                "errors": node_reasons, "dependent_outputs": [],
                "class_type": prompt[node_id]["class_type"]})
            if out not in entry["dependent_outputs"]:
                entry["dependent_outputs"].append(out)
    if not good:
        # ComfyUI lists only the output nodes' own reasons here (often none);
        # listing every node error makes the one-line message useful.
        lines = [f"{e['message']}: {e['details']}" for entry in node_errors.values() for e in entry["errors"]]
        return ValidationResult(
            _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "\n".join(lines)),
            [], node_errors)
    return ValidationResult(None, good, node_errors)


def _node_order(node_id: str) -> tuple[int, str]:
    return (0, f"{int(node_id):020d}") if node_id.isdigit() else (1, node_id)


def _input_kind(spec: Any) -> tuple[Any, dict[str, Any]]:
    """(type, options) of one input spec; new-style combos become lists."""
    if not isinstance(spec, (list, tuple)) or not spec:
        return spec, {}
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if kind == "COMBO" and isinstance(options.get("options"), list):
        kind = options["options"]
    return kind, options


def types_compatible(received: str, expected: Any) -> bool:
    """Whether an output of type ``received`` may feed an input of ``expected``."""
    if isinstance(expected, (list, tuple)):
        return received in ("*", "COMBO")
    if received == "*" or expected == "*":
        return True
    if received == expected:
        return True
    wanted = {t.strip() for t in str(expected).split(",")}
    given = {t.strip() for t in str(received).split(",")}
    return bool(wanted & given) and (given <= wanted or wanted <= given)


class _Checker:
    """Walks the graph backwards from an output, memoising per node."""

    def __init__(self, prompt: dict[str, Any], object_info: dict[str, Any]):
        self.prompt = prompt
        self.object_info = object_info
        self.validated: dict[str, tuple[bool, list[dict]]] = {}
        self._visiting: set[str] = set()

    def node(self, node_id: str) -> tuple[bool, list[dict]]:
        if node_id in self.validated:
            return self.validated[node_id]
        self._visiting.add(node_id)
        node = self.prompt[node_id]
        info = self.object_info[node["class_type"]]
        inputs = node.get("inputs", {})
        errors: list[dict] = []
        valid = True
        if not isinstance(inputs, dict):
            errors.append(_error("invalid_prompt", "Node inputs must be a JSON object", f"Node ID '#{node_id}'"))
            inputs = {}
        declared = info.get("input", {})
        sections = [("required", declared.get("required", {})), ("optional", declared.get("optional", {}))]
        for section, specs in sections:
            for name, spec in specs.items():
                if name not in inputs:
                    if section == "required":
                        errors.append(_error("required_input_missing", "Required input is missing",
                                             name, input_name=name))
                    continue
                ok, error = self._input(name, spec, inputs[name])
                if error is not None:
                    errors.append(error)
                valid = valid and ok
        self._visiting.discard(node_id)
        verdict = (not errors and valid, errors)
        self.validated[node_id] = verdict
        return verdict

    def _input(self, name: str, spec: Any, value: Any) -> tuple[bool, dict | None]:
        kind, options = _input_kind(spec)
        config = list(spec) if isinstance(spec, (list, tuple)) else spec
        if isinstance(value, list):
            return self._link(name, kind, config, value)
        cast = PRIMITIVE_TYPES.get(kind) if isinstance(kind, str) else None
        if isinstance(kind, str) and cast is None:
            return True, _error("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                                f"{name}, {value}, a {kind} input must be linked to another node's output",
                                input_name=name, input_config=config, received_value=value,
                                exception_message=f"{kind} is not a primitive type")
        if cast is not None:
            try:
                value = cast(value)
            except (TypeError, ValueError, OverflowError) as exc:
                return True, _error("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                                    f"{name}, {value}, {exc}", input_name=name, input_config=config,
                                    received_value=value, exception_message=str(exc))
        if "min" in options and value < options["min"]:
            return True, _error("value_smaller_than_min", f"Value {value} smaller than min of {options['min']}",
                                name, input_name=name, input_config=config, received_value=value)
        if "max" in options and value > options["max"]:
            return True, _error("value_bigger_than_max", f"Value {value} bigger than max of {options['max']}",
                                name, input_name=name, input_config=config, received_value=value)
        if isinstance(kind, (list, tuple)) and value not in kind:
            listed = f"(list of length {len(kind)})" if len(kind) > 20 else str(list(kind))
            return True, _error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {listed}",
                                input_name=name, input_config=config if len(kind) <= 20 else None,
                                received_value=value)
        return True, None

    def _link(self, name: str, kind: Any, config: Any, value: list) -> tuple[bool, dict | None]:
        def bad(why: str) -> tuple[bool, dict]:
            return True, _error("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                f"{name}{why}", input_name=name, input_config=config, received_value=value)
        if len(value) != 2:
            return bad("")
        source, slot = value
        if not isinstance(source, str) or source not in self.prompt:
            return bad(f": linked node {source!r} does not exist")
        outputs = self.object_info[self.prompt[source]["class_type"]].get("output", [])
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < len(outputs):
            return bad(f": node {source!r} has no output slot {slot!r}")
        received = outputs[slot]
        if not types_compatible(received, kind):
            return True, _error("return_type_mismatch", "Return type mismatch between linked nodes",
                                f"{name}, received_type({received}) mismatch input_type({kind})",
                                input_name=name, input_config=config, received_type=received, linked_node=value)
        if source in self._visiting:
            return True, _error("dependency_cycle", "Dependency cycle detected", f"{name}, linked node {source!r}",
                                input_name=name, linked_node=value)
        upstream_ok, _ = self.node(source)
        return upstream_ok, None


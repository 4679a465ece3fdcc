"""validate_prompt: ComfyUI's error types and response shape, as a pure function."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.comfy.nodes import SAMPLERS, SCHEDULERS
from pipeline.comfy.validate import check_prompt, types_compatible, validate_prompt
from pipeline.comfy.workflows import txt2img


def node_error_types(body, node_id):
    return [e["type"] for e in body["node_errors"][node_id]["errors"]]


def test_default_graph_is_valid_for_every_sampler_and_scheduler(catalog):
    for sampler in SAMPLERS:
        for scheduler in SCHEDULERS:
            assert validate_prompt(txt2img("x", sampler=sampler, scheduler=scheduler), catalog) is None


def test_validation_does_not_mutate_the_prompt(catalog):
    prompt = txt2img("x")
    prompt["3"]["inputs"]["steps"] = "4"
    before = copy.deepcopy(prompt)
    assert validate_prompt(prompt, catalog) is None
    assert prompt == before


def test_json_roundtripped_catalog_gives_the_same_verdict(catalog):
    over_http = json.loads(json.dumps(catalog))
    bad = txt2img("x", sampler="nope")
    assert validate_prompt(bad, over_http) == validate_prompt(bad, catalog)


def test_prompt_not_an_object(catalog):
    assert validate_prompt(["not", "a", "graph"], catalog)["error"]["type"] == "invalid_prompt"


def test_missing_class_type(catalog):
    prompt = txt2img("x")
    del prompt["5"]["class_type"]
    body = validate_prompt(prompt, catalog)
    assert body["error"] == {"type": "invalid_prompt",
                             "message": "Cannot execute because a node is missing the class_type property.",
                             "details": "Node ID '#5'", "extra_info": {}}
    assert body["node_errors"] == {}


def test_missing_node_type(catalog):
    prompt = txt2img("x")
    prompt["10"] = {"class_type": "UpscaleModelLoader", "inputs": {}}
    body = validate_prompt(prompt, catalog)
    assert body["error"]["type"] == "missing_node_type"
    assert body["error"]["details"] == "Node ID '#10'"
    assert body["error"]["extra_info"]["class_type"] == "UpscaleModelLoader"


def test_prompt_without_output_node(catalog):
    prompt = txt2img("x")
    del prompt["9"]
    body = validate_prompt(prompt, catalog)
    assert body["error"] == {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                             "details": "", "extra_info": {}}


def test_required_input_missing(catalog):
    prompt = txt2img("x")
    del prompt["3"]["inputs"]["cfg"]
    body = validate_prompt(prompt, catalog)
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    entry = body["node_errors"]["3"]
    assert entry["class_type"] == "KSampler" and entry["dependent_outputs"] == ["9"]
    assert entry["errors"] == [{"type": "required_input_missing", "message": "Required input is missing",
                                "details": "cfg", "extra_info": {"input_name": "cfg"}}]
    assert "Required input is missing: cfg" in body["error"]["details"]


@pytest.mark.parametrize("node_id,name,value,listed", [
    ("4", "ckpt_name", "missing.safetensors", "tiny.safetensors"),
    ("3", "sampler_name", "warp_drive", "euler"),
    ("3", "scheduler", "lunar", "karras"),
])
def test_value_not_in_list(catalog, node_id, name, value, listed):
    prompt = txt2img("x")
    prompt[node_id]["inputs"][name] = value
    body = validate_prompt(prompt, catalog)
    error = body["node_errors"][node_id]["errors"][0]
    assert error["type"] == "value_not_in_list" and error["message"] == "Value not in list"
    assert error["details"].startswith(f"{name}: '{value}' not in ") and listed in error["details"]
    assert error["extra_info"]["received_value"] == value


def test_return_type_mismatch(catalog):
    prompt = txt2img("x")
    prompt["3"]["inputs"]["model"] = ["4", 2]  # the VAE output
    body = validate_prompt(prompt, catalog)
    error = body["node_errors"]["3"]["errors"][0]
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "model, received_type(VAE) mismatch input_type(MODEL)"
    assert error["extra_info"]["linked_node"] == ["4", 2]


@pytest.mark.parametrize("link", [["4", 0, 1], ["99", 0], ["4", 7], ["4", "0"]])
def test_bad_linked_input(catalog, link):
    prompt = txt2img("x")
    prompt["3"]["inputs"]["model"] = link
    body = validate_prompt(prompt, catalog)
    assert node_error_types(body, "3") == ["bad_linked_input"]


@pytest.mark.parametrize("name,value", [("steps", "four"), ("seed", {"n": 1}), ("cfg", "high")])
def test_invalid_input_type(catalog, name, value):
    prompt = txt2img("x")
    prompt["3"]["inputs"][name] = value
    body = validate_prompt(prompt, catalog)
    error = body["node_errors"]["3"]["errors"][0]
    assert error["type"] == "invalid_input_type"
    assert error["details"].startswith(f"{name}, ")


def test_literal_where_a_link_is_required(catalog):
    prompt = txt2img("x")
    prompt["8"]["inputs"]["vae"] = "my.vae"
    assert node_error_types(validate_prompt(prompt, catalog), "8") == ["invalid_input_type"]


@pytest.mark.parametrize("name,value,kind,message", [
    ("steps", 0, "value_smaller_than_min", "Value 0 smaller than min of 1"),
    ("denoise", 1.5, "value_bigger_than_max", "Value 1.5 bigger than max of 1.0"),
    ("seed", -1, "value_smaller_than_min", "Value -1 smaller than min of 0"),
    ("seed", 2 ** 64, "value_bigger_than_max", f"Value {2 ** 64} bigger than max of {2 ** 64 - 1}"),
])
def test_bounds(catalog, name, value, kind, message):
    prompt = txt2img("x")
    prompt["3"]["inputs"][name] = value
    error = validate_prompt(prompt, catalog)["node_errors"]["3"]["errors"][0]
    assert (error["type"], error["message"], error["details"]) == (kind, message, name)


def test_upstream_error_reported_on_the_upstream_node_only(catalog):
    prompt = txt2img("x", width=8)
    body = validate_prompt(prompt, catalog)
    assert list(body["node_errors"]) == ["5"]
    assert node_error_types(body, "5") == ["value_smaller_than_min"]
    assert body["node_errors"]["5"]["dependent_outputs"] == ["9"]


def test_one_bad_output_of_two_still_runs_the_good_one(catalog):
    prompt = txt2img("x")
    prompt["10"] = {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 1]}}
    prompt["11"] = {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "b"}}
    result = check_prompt(prompt, catalog)
    assert result.ok and result.outputs == ["9"]
    assert result.node_errors["10"]["dependent_outputs"] == ["11"]
    assert validate_prompt(prompt, catalog) is None


def test_dependency_cycle_is_an_error_not_a_crash(catalog):
    prompt = txt2img("x")
    prompt["3"]["inputs"]["latent_image"] = ["12", 0]
    prompt["12"] = {"class_type": "KSampler", "inputs": {**prompt["3"]["inputs"], "latent_image": ["3", 0]}}
    body = validate_prompt(prompt, catalog)
    types = {e["type"] for entry in body["node_errors"].values() for e in entry["errors"]}
    assert "dependency_cycle" in types


def test_new_style_combo_spec_is_understood():
    info = {"Pick": {"input": {"required": {"mode": ["COMBO", {"options": ["a", "b"]}]}},
                     "output": [], "output_node": True}}
    assert validate_prompt({"1": {"class_type": "Pick", "inputs": {"mode": "a"}}}, info) is None
    body = validate_prompt({"1": {"class_type": "Pick", "inputs": {"mode": "c"}}}, info)
    assert node_error_types(body, "1") == ["value_not_in_list"]


def test_type_compatibility_rules():
    assert types_compatible("MODEL", "MODEL")
    assert types_compatible("*", "IMAGE") and types_compatible("IMAGE", "*")
    assert types_compatible("IMAGE", "IMAGE,MASK")
    assert not types_compatible("VAE", "MODEL")


_values = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False),
                    st.text(max_size=8), st.lists(st.one_of(st.text(max_size=3), st.integers(-2, 9)), max_size=3),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(node=st.sampled_from(["3", "4", "5", "6", "7", "8", "9"]), name=st.text(max_size=12), value=_values,
       drop=st.booleans())
def test_any_single_corruption_gives_a_well_formed_verdict(catalog, node, name, value, drop):
    prompt = txt2img("x")
    inputs = prompt[node]["inputs"]
    key = sorted(inputs)[hash(name) % len(inputs)] if drop or not name else name
    if drop:
        del inputs[key]
    else:
        inputs[key] = value
    body = validate_prompt(prompt, catalog)
    if body is None:
        return
    assert set(body) == {"error", "node_errors"}
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    for node_id, entry in body["node_errors"].items():
        assert set(entry) == {"errors", "dependent_outputs", "class_type"}
        assert entry["class_type"] == prompt[node_id]["class_type"] and entry["errors"]
        for error in entry["errors"]:
            assert set(error) == {"type", "message", "details", "extra_info"}
    json.dumps(body)  # the body must travel as JSON

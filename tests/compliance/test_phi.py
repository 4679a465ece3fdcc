"""The PHI gate: properties over generated payloads, and the bench's targets."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance import phi
from compliance.phi_bench import STRUCTURED, corpus, measure

# SSNs the SSA could have issued: area not 000/666/9xx, group not 00, serial not 0000.
ssn = st.builds(lambda a, g, s, sep: f"{a:03d}{sep}{g:02d}{sep}{s:04d}",
                st.integers(1, 899).filter(lambda a: a != 666), st.integers(1, 99), st.integers(1, 9999),
                st.sampled_from(["-", " "]))
# Benign text: letters and punctuation, no digits, so it cannot itself look like an identifier.
words = st.text(st.characters(whitelist_categories=("Ll", "Lu"), max_codepoint=0x24F) | st.sampled_from(" ,.;:"),
                max_size=40)
keys = st.text(st.characters(whitelist_categories=("Ll",), max_codepoint=0x7A), min_size=1, max_size=8).filter(
    lambda k: phi.KEY_ENTITIES.get(k) is None)


@st.composite
def payload_with(draw, value: st.SearchStrategy[str]):
    """A nested JSON payload with ``value`` embedded in one string somewhere; returns (payload, path, value)."""
    v = draw(value)
    text = f"{draw(words)} {v} {draw(words)}"
    path_keys = draw(st.lists(keys, min_size=1, max_size=4))
    node: object = text
    for k in reversed(path_keys):
        node = {k: node} if draw(st.booleans()) else {k: [draw(words), node]}
    return node, v


@settings(max_examples=150, deadline=None)
@given(payload_with(ssn))
def test_any_ssn_anywhere_is_found_and_never_echoed(case):
    payload, value = case
    findings = phi.scan(payload)
    assert "SSN" in {f.entity for f in findings}
    dumped = json.dumps([f.as_dict() for f in findings])
    assert value not in dumped and value.replace("-", "") not in dumped


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | words,
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
                    max_leaves=12))
def test_text_without_digits_or_phi_keys_has_no_structured_findings(payload):
    found = {f.entity for f in phi.scan(payload)}
    assert not found & {"SSN", "MRN", "DOB", "PHONE", "NPI", "MBI"}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(phi.KEY_ENTITIES)), st.integers(1, 10**9) | st.text(min_size=1, max_size=12))
def test_a_phi_schema_field_is_rejected_whatever_its_value(key, value):
    path = f"workflow.3.inputs.{key}"
    findings = phi.scan({"workflow": {"3": {"inputs": {key: value}}}})
    assert phi.Finding(path, phi.KEY_ENTITIES[key]) in findings
    assert {f.field for f in findings} <= {path, f"{path}(key)"}   # only paths come back, never the value


def test_findings_name_the_field_path_and_entity():
    payload = {"prompt": "a lighthouse", "workflow": {"6": {"inputs": {
        "text": "patient Maria Okafor, MRN: 00482913, dx E11.9, lives at 12 Harbor Street"}}}}
    got = {(f.field, f.entity) for f in phi.scan(payload)}
    field = "workflow.6.inputs.text"
    assert got == {(field, "PERSON"), (field, "MRN"), (field, "ICD10"), (field, "ADDRESS")}


def test_look_alikes_are_not_phi():
    benign = ["seed 123456789, 1024x1024, steps 30", "portrait of Ada Lovelace at 221 Baker Street",
              "render on H100 then A100", "release date 2024-03-15", "sku 3fa2c1d4e5f6, price $1,299.99",
              "A Patient Golden Retriever By The Sea", "highway A10 at night", "timestamp 1712345678"]
    for text in benign:
        assert phi.scan_text(text) == [], text


def test_entities_filter_is_respected():
    text = "SSN 123-45-6789, call 212-555-0147"
    assert phi.scan_text(text, ["PHONE"]) == ["PHONE"]
    assert phi.scan({"p": text}, ["EMAIL"]) == []


def test_bench_meets_the_targets():
    m = measure(corpus(n_per_entity=100, n_benign=1000, seed=11), cost_jobs=20)
    assert m.structured_recall >= 0.99
    assert all(m.recall[e] >= 0.99 for e in STRUCTURED)
    assert m.false_positive_rate <= 0.01
    assert m.positives["SSN"] == 100 and m.benign == 1000
    assert m.scan_cost is not None and m.scan_cost.jobs == 20 and m.scan_cost.strings_per_job > 20
    assert 0 < m.scan_cost.median_ms <= m.scan_cost.p95_ms


def test_corpus_is_repeatable():
    import time

    first = corpus(20, 50, seed=3)
    time.sleep(1.1)  # across a second boundary: nothing in it may depend on the clock
    assert corpus(20, 50, seed=3) == first
    assert corpus(20, 50, seed=3) != corpus(20, 50, seed=4)

"""The presidio side of the PHI gate: offline, lazy, one engine, and the shapes faker writes."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance import phi
from compliance.phi_bench import npi_check_digit


def test_importing_the_gate_does_not_import_presidio():
    code = "import sys, compliance.phi; print('presidio_analyzer' in sys.modules, 'spacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_engine_is_offline_regex_only_and_covers_every_entity(monkeypatch):
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    def no_network(*args, **kwargs):
        raise AssertionError(f"the PHI gate touched the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    engine = phi.build_engine()          # a fresh one: nothing cached from earlier tests
    assert isinstance(engine.nlp_engine, NoOpNlpEngine)
    assert set(phi.ENTITIES) <= set(engine.get_supported_entities("en"))
    results = engine.analyze("write to jane.roe@clinic.example.co.uk or ops@xn--80ak6aa92e.com", language="en")
    assert sum(r.entity_type == "EMAIL" for r in results) == 2
    assert not engine.analyze("write to jane.roe@nowhere.invalidtld", language="en")


def test_the_engine_is_built_once_under_concurrent_first_use(monkeypatch):
    built = []
    gate = phi._Gate()

    def fake_build():
        built.append(threading.get_ident())
        return object()

    monkeypatch.setattr(phi, "build_engine", fake_build)
    engines = []
    threads = [threading.Thread(target=lambda: engines.append(gate.engine())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(e) for e in engines}) == 1


def test_the_verdict_cache_keeps_digests_never_text():
    text = "patient Hana Okafor, SSN 219-09-9999, seen in clinic"
    assert phi.scan_text(text) == ["SSN", "PERSON"]
    keys = list(phi._GATE._verdicts)
    assert keys and all(isinstance(k, bytes) and len(k) == 16 for k in keys)
    assert not any(b"219-09-9999" in k for k in keys)
    phi.clear_cache()
    assert not phi._GATE._verdicts
    assert phi.scan_text(text) == ["SSN", "PERSON"]     # analysed again, same verdict


@settings(max_examples=40, deadline=None)
@given(st.uuids(), st.sampled_from(["SSN 219-09-9999", "call 415-555-0134", "jane.roe@example.org"]))
def test_a_canonical_uuid_skips_the_engine_and_nothing_around_it_does(u, phi_text):
    phi.clear_cache()
    for text in (str(u), str(u).upper()):
        assert phi.scan_text(text) == []
    assert not phi._GATE._verdicts                       # the engine never saw them
    # PHI next to, around or in place of a job id is still analysed and found
    for text in (f"{u} {phi_text}", f"{phi_text}, {u}", phi_text):
        assert phi.scan_text(text), text
    found = phi.scan({"jobId": phi_text.split()[-1], "note": str(u)})
    assert [f.field for f in found] == ["jobId"]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["phone_number", "ssn", "email", "free_email"]))
def test_whatever_faker_writes_is_found(seed, kind):
    fake = Faker("en_US")
    fake.seed_instance(seed)
    value = getattr(fake, kind)()
    entity = {"phone_number": "PHONE", "ssn": "SSN", "email": "EMAIL", "free_email": "EMAIL"}[kind]
    assert entity in phi.scan_text(f"watercolor of a harbor, {value}, soft light"), value


@pytest.mark.parametrize("text, expected", [
    ("4715186257", ["PHONE"]),                       # bare ten digits, NANP-valid
    ("reach me at 4715186257 after 5pm", ["PHONE"]),
    ("seed 4715186257, steps 30", []),               # a parameter word before it vetoes
    ("job #4715186257", []),
    ("timestamp 1712345678", []),                    # area code starting 1 is no NANP number
    ("1,234,567,890 stars over the desert", []),
    ("call +44 20 7946 0958", ["PHONE"]),            # libphonenumber with a cue
    ("+44 20 7946 0958", []),                         # ... and without one
    ("(591)341-7776x408", ["PHONE"]),
])
def test_phone_shapes_and_vetoes(text, expected):
    assert phi.scan_text(text) == expected


def test_ssn_rules_fail_closed_but_skip_never_issued_areas():
    assert phi.scan_text("SSN 123-45-6789") == ["SSN"]        # presidio drops published samples; we refuse them
    assert phi.scan_text("id 111-11-1111") == ["SSN"]
    assert phi.scan_text("ref 912-34-5678") == []             # 9xx is an ITIN, not an SSN
    assert phi.scan_text("lot 666-12-3456") == [] and phi.scan_text("lot 123-00-4567") == []
    assert phi.scan_text("a security camera, seed 123456789") == []
    assert phi.scan_text("social security 123456789") == ["SSN"]


def test_npi_needs_its_checksum_or_its_label():
    npi = npi_check_digit("123456789")
    wrong = npi[:-1] + str((int(npi[-1]) + 1) % 10)
    assert phi.scan_text(f"referring provider {npi}") == ["NPI"]
    assert phi.scan_text(f"referring provider {wrong}") == []
    assert "NPI" not in phi.scan_text(f"render {npi} frames")  # a valid checksum alone is not enough
    assert phi.scan_text(f"NPI: {wrong}") == ["NPI"]           # the label alone is (as the first gate did)


def test_contextual_entities_need_their_cue():
    assert phi.scan_text("Dr. Mark Jones referred to radiology") == ["PERSON"]
    assert phi.scan_text("Dr. Mark Jones, portrait in oils") == []
    assert phi.scan_text("8424 Oneal Crossroad, discharged to home care") == ["ADDRESS"]
    assert phi.scan_text("storefront at 8424 Oneal Crossroad at golden hour") == []
    assert phi.scan_text("patient Sean O'Brien, chest x-ray") == ["PERSON"]
    assert phi.scan_text("vintage car E11 on the road") == []
    assert phi.scan_text("mbi 1eg4-te5-mk73") == ["MBI"]      # labelled, any case
    assert phi.scan_text("1eg4te5mk73 texture") == []          # unlabelled shape is upper case only


def test_nothing_is_logged_with_the_value_even_at_debug(caplog):
    caplog.set_level("DEBUG")
    phi.clear_cache()
    text = "patient Hana Okafor, SSN 219-09-9999, hana.okafor@example.com"
    assert {f.entity for f in phi.scan({"prompt": text})} == {"PERSON", "SSN", "EMAIL"}
    assert caplog.records                      # presidio did log at debug ...
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "219-09-9999" not in logged and "Okafor" not in logged and "hana.okafor" not in logged

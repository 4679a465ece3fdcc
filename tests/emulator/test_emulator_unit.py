"""LocalEmulators without starting anything: toolchain errors, settings, the pid file, the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfyfab.cli import main
from comfyfab.emulator import (
    LOCALSTACK_SERVICES, EmulatorError, LocalEmulators, ProcessInfo, find_java, find_npm, find_python313,
)


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_missing_python313_names_what_to_install(tmp_path):
    with pytest.raises(EmulatorError, match=r"Python 3\.13 not found.*pyenv install 3\.13"):
        find_python313(str(tmp_path / "nope"))


def test_a_python_that_is_not_313_is_refused(tmp_path):
    with pytest.raises(EmulatorError, match="Python 3.13 not found"):
        find_python313(sys.executable)  # the project's 3.11


def test_pyenv_versions_are_searched(tmp_path):
    fake = _script(tmp_path, "py", 'echo "(3, 13)"')
    bindir = tmp_path / "root" / "versions" / "3.13.0" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python3.13").symlink_to(fake)
    found = find_python313(pyenv_roots=(tmp_path / "root",))
    assert found.endswith("3.13.0/bin/python3.13") or found.endswith("python3.13")


def test_missing_java_names_a_package(tmp_path):
    with pytest.raises(EmulatorError, match="openjdk-17-jre-headless"):
        find_java(str(tmp_path / "no-java"))


@pytest.mark.parametrize("banner,ok", [
    ('openjdk version "17.0.15" 2025-04-15', True),
    ('openjdk version "21" 2023-09-19', True),
    ('openjdk version "11.0.2" 2019-01-15', False),
    ('java version "1.8.0_292"', False),
])
def test_java_version_gate(tmp_path, banner, ok):
    java = _script(tmp_path, "java", f"echo '{banner}' >&2")
    if ok:
        assert find_java(java) == java
    else:
        with pytest.raises(EmulatorError, match="needs 17"):
            find_java(java)


def test_missing_npm_names_nodejs(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None)
    with pytest.raises(EmulatorError, match="npm not found.*Node.js"):
        find_npm()


def test_up_without_python313_fails_before_touching_ports(tmp_path):
    emu = LocalEmulators(tmp_path, python=str(tmp_path / "nope"))
    with pytest.raises(EmulatorError, match="Python 3.13"):
        emu.up()
    assert not emu.pidfile.exists()


def test_missing_lock_file_is_named(tmp_path):
    emu = LocalEmulators(tmp_path, lock_file=tmp_path / "missing.lock")
    with pytest.raises(EmulatorError, match="lock file not found"):
        emu.install_localstack(sys.executable)


def test_localstack_settings_are_strict_offline_and_local(tmp_path):
    env = LocalEmulators(tmp_path, host="127.0.0.1").localstack_env(4599)
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"
    assert env["S3_SKIP_SIGNATURE_VALIDATION"] == "0"
    assert env["DNS_ADDRESS"] == "0"
    assert env["DISABLE_EVENTS"] == "1" and env["SKIP_SSL_CERT_DOWNLOAD"] == "1"
    # DynamoDB goes to DynamoDB Local: LocalStack's own (which downloads at first use) stays off.
    services = env["SERVICES"].split(",")
    assert "dynamodb" not in services and set(services) == set(LOCALSTACK_SERVICES)
    assert env["STRICT_SERVICE_LOADING"] == "1"
    assert all(str(tmp_path.resolve()) in env[k] for k in ("FILESYSTEM_ROOT", "TMPDIR", "HOME"))
    assert not any(k.startswith("AWS_") for k in env)


def test_lock_file_pins_every_package():
    emu = LocalEmulators(Path("unused"))
    pins = [ln for ln in emu.lock_file.read_text().splitlines() if ln and not ln.startswith("#")]
    assert all("==" in ln for ln in pins), [ln for ln in pins if "==" not in ln]
    names = {ln.split("==")[0].lower() for ln in pins}
    assert {"localstack-core", "service-identity", "pyopenssl", "cryptography", "cbor2"} <= names
    versions = dict(ln.lower().split("==") for ln in pins)
    assert versions["localstack-core"] == "2026.3.0" and versions["cbor2"].startswith("5.")
    assert (versions["pyopenssl"], versions["cryptography"]) == ("25.3.0", "46.0.5")


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(pid=st.integers(min_value=1, max_value=2**22), port=st.integers(min_value=1, max_value=65535),
       marker=_names, started=st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_pidfile_round_trip(tmp_path_factory, pid, port, marker, started):
    emu = LocalEmulators(tmp_path_factory.mktemp("state"))
    procs = (ProcessInfo(name="localstack", pid=pid, url=f"http://127.0.0.1:{port}", log="l", started_at=started,
                         marker=marker),
             ProcessInfo(name="dynamodb-local", pid=pid + 1, url=f"http://127.0.0.1:{port}", log="l", started_at=started,
                         marker=marker))
    emu._write_pidfile(procs)
    assert emu._read_pidfile() == procs


@pytest.mark.parametrize("text", ["{not json", '{"processes": []}', '{"processes": [{"name": "x"}]}'])
def test_corrupt_pidfile_is_an_error(tmp_path, text):
    emu = LocalEmulators(tmp_path)
    emu.pidfile.write_text(text)
    with pytest.raises(EmulatorError, match="unreadable pid file"):
        emu.status()


def _pair(pid: int, marker: str) -> tuple[ProcessInfo, ProcessInfo]:
    dead = ProcessInfo("dynamodb-local", 2**22 + 1, "http://127.0.0.1:2", "l", 0.0, "DynamoDBLocal.jar")
    return ProcessInfo("localstack", pid, "http://127.0.0.1:1", "l", 0.0, marker), dead


def test_never_signals_a_pid_that_is_not_ours(tmp_path):
    """A stale pid file whose pids now belong to other programs: down() signals nothing."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        emu = LocalEmulators(tmp_path)
        emu._write_pidfile(_pair(sleeper.pid, "localstack.runtime.main"))
        assert emu.down() == []
        assert sleeper.poll() is None
        assert not emu.pidfile.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_down_stops_its_own_process_group(tmp_path):
    marker = f"comfyfab-emulator-test-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen(["sh", "-c", f"sleep 30; echo {marker}"], start_new_session=True)
    try:
        emu = LocalEmulators(tmp_path)
        emu._write_pidfile(_pair(proc.pid, marker))
        deadline = time.monotonic() + 5
        while not emu.status().alive["localstack"] and time.monotonic() < deadline:
            time.sleep(0.05)  # until the child has exec'd sh
        assert emu.status().alive == {"localstack": True, "dynamodb-local": False}
        assert emu.down() == ["localstack"]
        assert proc.wait(timeout=5) != 0
        assert emu.status().processes == ()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_child_that_has_not_exec_d_yet_counts_as_running(tmp_path):
    """Right after Popen the child's /proc cmdline is still ours; readiness must not call it dead."""
    emu = LocalEmulators(tmp_path)
    info = emu._spawn("localstack", ["sleep", "30"], {"PATH": "/usr/bin:/bin"}, "http://127.0.0.1:1",
                      "a-marker-that-never-appears")
    try:
        assert not emu._exited(info)
        assert not info.alive()  # another process, going by the marker alone, would not signal it
    finally:
        emu._children[0].kill()
        emu._children[0].wait()
    assert emu._exited(info)


def test_cli_status_when_nothing_runs(tmp_path, capsys):
    assert main(["emulator", "status", "--state-dir", str(tmp_path)]) == 3
    assert "not running" in capsys.readouterr().out


def test_cli_up_reports_a_missing_python_as_a_message(tmp_path, capsys):
    rc = main(["emulator", "up", "--state-dir", str(tmp_path), "--python", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and "Python 3.13 not found" in err and "Traceback" not in err


def test_cli_refuses_other_backends(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["emulator", "up", "--backend", "embedded", "--state-dir", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err

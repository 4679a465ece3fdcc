"""``python -m pipeline.comfy`` serves until SIGTERM."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def test_standalone_server_answers_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.comfy", "--engine", "noop", "--port", "0",
                             "--output-dir", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        assert httpx.get(match.group(0) + "/prompt", timeout=10).json() == {"exec_info": {"queue_remaining": 0}}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

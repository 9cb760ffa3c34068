"""The API description tells the truth: schemathesis, with every check, against a real bridge
on loopback finds no failure (undeclared statuses, wrong bodies, schema-valid requests refused,
schema-violating ones accepted, 405 without Allow, server errors). `pytest -s` prints its summary.

The run reads schemathesis.toml at the project root, as a bare `schemathesis run URL` started
there does (every check is on by default). It says which 400s answer schema-valid requests
(what only the pipeline can judge: a file that is not audio, text no voice can say) and turns
off two checks where the schema cannot carry the reason: use_after_free (a cancelled job stays
listed) and negative_data_rejection on multipart uploads (a field mutated to a number or null
arrives as valid text). `--checks all` on the command line would turn them back on.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge_server.serve.app import ServerSettings, serve_in_thread

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = str(Path(__file__).resolve().parents[1] / "schemathesis.toml")
SEED = os.environ.get("LIPSYNC_FUZZ_SEED", "1")  # fixed, so a failure reproduces


@pytest.fixture(scope="module")
def bridge():
    url, stop = serve_in_thread(ServerSettings(max_upload_mb=5))
    yield url
    stop()


@pytest.mark.slow
def test_schemathesis_finds_no_failure(bridge, tmp_path):
    command = [
        SCHEMATHESIS, "--config-file", CONFIG, "run", f"{bridge}/openapi.json",
        "--max-examples", "5", "--seed", SEED, "--generation-database", "none",
        "--no-color", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    print(summary)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "generated" in summary and "failure" not in summary.lower()

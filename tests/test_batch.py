"""`lipsync batch` on Dask: lines found, every line whole and once, a dead worker, a rerun."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge_server.batch import MANIFEST, find_lines, run
from bridge_server.core.errors import InputError
from tests.bridge import free_port

BIN = Path(sys.executable).parent
SENTENCES = (Path(__file__).parent / "data" / "harvard.txt").read_text().splitlines()


def recordings(espeak, folder: Path, n: int) -> list[Path]:
    """n spoken lines with their scripts beside them (eSpeak, real speech sounds)."""
    from bridge_server.media.audio import wav_bytes

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, text in enumerate(SENTENCES[:n]):
        speech = espeak.synthesize(text)
        wav = folder / f"line{i:02d}.wav"
        wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
        wav.with_suffix(".txt").write_text(text)
        out.append(wav)
    return out


def test_lines_come_from_folders_with_scripts_and_from_lists_with_options(tmp_path):
    (tmp_path / "act1").mkdir()
    (tmp_path / "act1" / "hello.wav").write_bytes(b"RIFF")
    (tmp_path / "act1" / "hello.txt").write_text("Hello there.")
    (tmp_path / "act1" / "notes.md").write_text("not a line")
    listing = tmp_path / "lines.csv"
    listing.write_text("id,audio,text,voice,visemes,fps\n"
                       "intro,act1/hello.wav,Hello there.,,arkit,30\n"
                       "bark,,Woof!,en-gb,,\n")  # fmt: skip
    lines = find_lines([tmp_path / "act1", listing])
    assert [(x.id, x.kind, x.text) for x in lines] == [
        ("hello", "audio", "Hello there."), ("intro", "audio", "Hello there."),
        ("bark", "text", "Woof!"),
    ]  # fmt: skip
    assert lines[1].options == {"visemes": "arkit", "fps": 30} and lines[2].voice == "en-gb"
    with pytest.raises(InputError, match="same outputs 'hello'"):
        find_lines([tmp_path / "act1", tmp_path / "act1" / "hello.wav"])
    with pytest.raises(InputError, match="does not exist"):
        find_lines([tmp_path / "nowhere"])
    (tmp_path / "act1" / "baked").mkdir()  # a batch's own output inside its input folder
    (tmp_path / "act1" / "baked" / "bark.wav").write_bytes(b"RIFF")
    assert [x.id for x in find_lines([tmp_path / "act1"], tmp_path / "act1" / "baked")] == ["hello"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no recordings, videos or lines"):
        find_lines([tmp_path / "empty"])


@pytest.mark.slow
def test_a_bad_file_fails_alone_with_its_fix_and_a_rerun_redoes_only_what_changed(espeak, tmp_path):
    good = recordings(espeak, tmp_path / "in", 2)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF....not a sound")
    out = tmp_path / "out"
    first = run(find_lines([tmp_path / "in"]), out, formats=("rhubarb-tsv",), workers=1)
    assert (first.done, first.skipped) == (2, 0)
    [failed] = first.failed
    assert failed["id"] == "broken" and "FFmpeg" in failed["error"] and failed["fix"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST] + [f"{p.stem}{s}" for p in good for s in (".json", ".tsv")]
    )
    good[0].with_suffix(".txt").write_text(SENTENCES[5])  # a changed script
    (tmp_path / "in" / "broken.wav").unlink()
    second = run(find_lines([tmp_path / "in"]), out, formats=("rhubarb-tsv",), workers=1)
    assert (second.done, second.skipped, second.failed) == (1, 1, [])
    records = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]
    assert sorted(r["id"] for r in records) == ["broken", "line00", "line01"]  # one per line


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing_and_nothing_is_done_twice(espeak, tmp_path):
    lines = recordings(espeak, tmp_path / "in", 10)
    out = tmp_path / "out"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], **quiet)]  # fmt: skip
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1",
                                           "--no-nanny", "--no-dashboard"], **quiet))  # fmt: skip
        batch = subprocess.Popen([BIN / "lipsync", "batch", str(tmp_path / "in"), "--out", str(out),
                                  "--scheduler", address], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while not (out / MANIFEST).is_file() and time.monotonic() < deadline:
            time.sleep(0.05)  # the first line is done: the others are running or queued
        procs[1].send_signal(signal.SIGKILL)
        _, err = batch.communicate(timeout=240)
        assert batch.returncode == 0, err
    finally:
        for p in procs:
            p.kill()
    records = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [p.stem for p in lines]  # each once
    assert {r["status"] for r in records} == {"ok"}
    for p in lines:
        timeline = json.loads((out / f"{p.stem}.json").read_text())  # whole, readable
        assert timeline["phonemes"] and timeline["source"]["text"]
    assert not list(out.glob(".*.part"))
    again = subprocess.run([BIN / "lipsync", "batch", str(tmp_path / "in"), "--out", str(out)],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0 and "0 done, 10 already done" in again.stderr


def _as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it, whatever this test process inherited or set: a child
    inherits blocked and ignored signals (in two full parallel runs the batch did not stop and
    ran to the end; the failure message shows this process's signal masks)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_and_the_next_run_goes_on(espeak, tmp_path):
    from bridge_server.core.errors import Cancelled

    recordings(espeak, tmp_path / "in", 16)  # lines enough to stop among, on a busy machine
    out = tmp_path / "out"
    command = [BIN / "lipsync", "batch", str(tmp_path / "in"), "--out", str(out), "--workers", "1"]
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_as_from_a_terminal)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / MANIFEST).is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    batch.send_signal(signal.SIGINT)
    _, err = batch.communicate(timeout=120)
    status = [x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("Sig")]
    assert batch.returncode == Cancelled.exit_code, err + "\n" + "\n".join(status)
    assert "run the same command again to go on" in err
    kept = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]  # whole records
    assert 1 <= len(kept) < 16 and {r["status"] for r in kept} == {"ok"}
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{16 - len(kept)} done, {len(kept)} already done" in again.stderr

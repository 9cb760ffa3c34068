"""Batch on Dask: a game's whole dialogue, each line one task, and nothing lost.

Every recording, video or line of text becomes one task on Dask distributed (an embedded
LocalCluster, one worker process per core, or the scheduler of an existing cluster) that writes
the line's timeline and exports into one folder, each file complete or not at all. The folder's
manifest.jsonl holds one record per line: status, outputs, seconds, worker, and for a failure
the error and its fix. A second run skips every line whose input, script and options are
unchanged and whose outputs are in place, and redoes what failed or changed. A worker lost
mid-task has its task run again on another (Dask reschedules it); Ctrl-C stops cleanly and the
next run goes on from the manifest.

    find_lines    inputs (files, folders, CSV/JSONL lists) -> Line records
    run_line      one line -> its files and its record (runs on a worker)
    run           lines -> Summary, on Dask
    cluster / submitted   a Dask client; tasks and their results as each finishes (the
                          dataset builder uses them too)
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .core import rigs
from .core.curves import Animation, option_fields
from .core.errors import EngineUnavailable, InputError, LipsyncError
from .formats.exporters import FORMATS, export
from .formats.outputs import write_all
from .media.audio import wav_bytes

log = logging.getLogger(__name__)

AUDIO = frozenset(".wav .ogg .oga .mp3 .flac .m4a .aac .opus .aif .aiff".split())
VIDEO = frozenset(".mp4 .mov .mkv .avi .webm .mpg .mpeg .m4v".split())
LISTS = frozenset({".csv", ".jsonl"})
MANIFEST = "manifest.jsonl"
OPTION_NAMES = frozenset(f.name for f in option_fields())


@dataclass(frozen=True)
class Line:
    """One line of dialogue: a recording or a video (with its script, if any), or words to say."""

    id: str  # its outputs' name in the folder
    kind: str  # audio | video | text
    source: str = ""  # the recording or the video; "" for text
    text: str | None = None  # the script of a recording or video; the words of a text line
    voice: str = ""  # text lines: the voice (eSpeak's or Piper's)
    options: dict = field(default_factory=dict)  # this line's animation options over the batch's


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)  # the failed lines' records
    seconds: float = 0.0
    audio_s: float = 0.0  # seconds of speech animated in this run
    dashboard: str = ""


# --- inputs -> lines -----------------------------------------------------------------------


def find_lines(inputs: list[str | Path], outputs: str | Path | None = None) -> list[Line]:
    """Every line the inputs name: recordings and videos (a folder's, at any depth, each with
    the script in a .txt beside it if there is one) and the rows of CSV/JSONL lists. Files in
    the `outputs` folder (a batch's own WAVs) are not inputs."""
    lines: list[Line] = []
    skip = Path(outputs).resolve() if outputs else None
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO | VIDEO
                           and not (skip and p.resolve().is_relative_to(skip)))  # fmt: skip
            lines += [_media_line(p, _id(p.relative_to(item).with_suffix(""))) for p in found]
        elif item.suffix.lower() in LISTS and item.is_file():
            lines += list(_listed(item))
        elif item.suffix.lower() in AUDIO | VIDEO and item.is_file():
            lines.append(_media_line(item, _id(Path(item.stem))))
        elif not item.exists():
            raise InputError(f"{item} does not exist; give recordings, videos, folders of them, "
                             "or a .csv/.jsonl list of lines")  # fmt: skip
        else:
            raise InputError(f"{item} is not a recording, a video, a folder or a .csv/.jsonl "
                             f"list; known sound files: {', '.join(sorted(AUDIO))}")  # fmt: skip
    if not lines:
        raise InputError(f"no recordings, videos or lines in {', '.join(map(str, inputs))}; give "
                         f"sound files ({', '.join(sorted(AUDIO))}), videos or a .csv/.jsonl list")  # fmt: skip
    seen: dict[str, Line] = {}
    for line in lines:
        if line.id in seen:
            raise InputError(f"two lines would write the same outputs '{line.id}': "
                             f"{seen[line.id].source or 'a text line'} and {line.source or 'a text line'}; "
                             "give them different names (an 'id' column in a list)")  # fmt: skip
        seen[line.id] = line
    return lines


def _id(relative: Path) -> str:
    return "__".join(relative.parts)


def _media_line(path: Path, line_id: str) -> Line:
    script = path.with_suffix(".txt")
    text = script.read_text(encoding="utf-8", errors="replace") if script.is_file() else None
    kind = "video" if path.suffix.lower() in VIDEO else "audio"
    return Line(line_id, kind, str(path.resolve()), text)


def _listed(path: Path) -> Iterator[Line]:
    """Rows of a list: audio or video (a path, relative to the list) or text; script, voice
    (or speaker), id, and any animation option (visemes, fps, intensity, ...)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = (
            list(csv.DictReader(f))
            if path.suffix.lower() == ".csv"
            else [json.loads(r) for r in f if r.strip()]
        )
    for n, row in enumerate(rows, 1):
        row = {k.strip().lower(): v for k, v in row.items() if k and v not in (None, "")}
        media = row.get("audio") or row.get("video")
        options = {k: _number(v) for k, v in row.items() if k in OPTION_NAMES}
        if media:
            where = (path.parent / media).resolve()
            if not where.is_file():
                raise InputError(f"{path}, row {n}: {media} is not a file; paths are relative "
                                 f"to the list's folder ({path.parent})")  # fmt: skip
            kind = "video" if "video" in row else "audio"
            text = row.get("script") or row.get("text")
            yield Line(row.get("id") or _id(Path(where.stem)), kind, str(where), text,
                       options=options)  # fmt: skip
        elif row.get("text"):
            yield Line(row.get("id") or f"{path.stem}_{n:04d}", "text", "", row["text"],
                       str(row.get("voice") or row.get("speaker") or ""), options)  # fmt: skip
        else:
            raise InputError(f"{path}, row {n}: needs 'audio', 'video' or 'text'")


def _number(value):
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return {"true": True, "false": False}.get(value.lower(), value)
    return value


# --- one line (on a worker) ------------------------------------------------------------------


def line_key(line: Line, options: dict, formats: tuple[str, ...]) -> str:
    """What the outputs depend on: the input's bytes, the line and the batch's options."""
    h = hashlib.sha256()
    if line.source:
        with open(line.source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    h.update(json.dumps([asdict(line) | {"source": ""}, options, formats, __version__],
                        sort_keys=True, default=str).encode())  # fmt: skip
    return h.hexdigest()[:20]


def run_line(line: Line, out: str, formats: tuple[str, ...], options: dict) -> dict:
    """Animate one line and write its files into `out`, all or none; its manifest record."""
    from . import pipeline  # the engines load in the worker, not in the client

    started = time.perf_counter()
    record = {"id": line.id, "source": line.source or line.text, "worker": _worker()}
    try:
        flat = options | line.options
        anim = Animation.from_flat(**flat)
        common = dict(viseme_set=anim.visemes, fps=anim.fps, settings=anim.curves)
        files: dict[Path, bytes | str] = {}
        folder = Path(out)
        if line.kind == "text":
            speech, timeline = pipeline.say(line.text or "", engine=flat.get("voice_engine", "espeak"),
                                            voice=line.voice or flat.get("voice", ""), **common)  # fmt: skip
            files[folder / f"{line.id}.wav"] = wav_bytes(speech.audio, speech.sample_rate)
        elif line.kind == "video":
            timeline = pipeline.track(line.source, text=line.text, engine=flat.get("engine", "auto"),
                                      **common)  # fmt: skip
        else:
            timeline = pipeline.bake(line.source, text=line.text, engine=flat.get("engine", "auto"),
                                     **common)  # fmt: skip
        if flat.get("rig") or flat.get("shape_keys"):  # curves named after the rig's shape keys
            keys = flat.get("shape_keys") or None
            if isinstance(keys, str):
                keys = [k.strip() for k in keys.split(",") if k.strip()]
            timeline = rigs.apply(timeline, rigs.resolve(flat.get("rig") or None, keys))
        files[folder / f"{line.id}.json"] = timeline.to_json()
        for name in formats:
            files[folder / f"{line.id}{FORMATS[name].suffix}"] = export(timeline, name)
        write_all(files)
        record |= {"status": "ok", "outputs": sorted(p.name for p in files),
                   "audio_s": round(timeline.duration, 3),
                   "warnings": [w.message for w in timeline.warnings]}  # fmt: skip
    except LipsyncError as e:
        message, _, fix = str(e).partition("; fix: ")
        record |= {"status": "failed", "error": message, "fix": fix or None}
    except Exception as e:  # a bug: the traceback goes to the worker's log
        log.exception("batch line %s failed", line.id)
        record |= {"status": "failed", "error": f"internal error ({type(e).__name__}: {e})",
                   "fix": "rerun this line alone with `lipsync bake -v` and report the traceback"}  # fmt: skip
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _worker() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


# --- the manifest --------------------------------------------------------------------------


class Manifest:
    """DIR/manifest.jsonl: appended as lines finish (a crash loses nothing), one record per
    line after `compact` (the latest wins)."""

    def __init__(self, folder: Path):
        self.path = folder / MANIFEST
        self.records: dict[str, dict] = {}
        if self.path.is_file():
            for n, text in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    record = json.loads(text)
                    self.records[record["id"]] = record
                except (ValueError, KeyError, TypeError):
                    log.warning("%s line %d is not a record (a run cut off while writing?); "
                                "its line will be redone", self.path, n)  # fmt: skip

    def done(self, line: Line, key: str) -> bool:
        r = self.records.get(line.id)
        folder = self.path.parent
        return bool(r and r.get("status") == "ok" and r.get("key") == key and
                    all((folder / name).is_file() for name in r.get("outputs", [])))  # fmt: skip

    def add(self, record: dict) -> None:
        self.records[record["id"]] = record
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def compact(self) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records.values())
        write_all({self.path: text})


# --- the run -------------------------------------------------------------------------------


Progress = Callable[[int, int, int, float], None]  # done, failed, total, seconds so far


def run(
    lines: list[Line],
    out: str | Path,
    *,
    formats: tuple[str, ...] = (),
    options: dict | None = None,
    scheduler: str = "",
    workers: int = 0,
    progress: Progress | None = None,
) -> Summary:
    """Every line not already done, as Dask tasks; the manifest records each as it finishes."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    options = dict(options or {})
    Animation.from_flat(**options)  # bad options fail before any cluster starts
    for name in formats:
        if name not in FORMATS:
            raise InputError(f"unknown format '{name}'; choose from: {', '.join(sorted(FORMATS))}")
    for stale in out.glob(".*.part"):  # a worker killed while writing left these
        stale.unlink(missing_ok=True)
    manifest = Manifest(out)
    keys = {line.id: line_key(line, options, formats) for line in lines}
    todo = [line for line in lines if not manifest.done(line, keys[line.id])]
    summary = Summary(skipped=len(lines) - len(todo))
    started = time.monotonic()
    if todo:
        with cluster(scheduler, workers) as client:
            summary.dashboard = getattr(client, "dashboard_link", "") or ""
            _gather(client, todo, keys, out, formats, options, manifest, summary, progress, started)
    manifest.compact()
    summary.seconds = time.monotonic() - started
    return summary


def _gather(client, todo, keys, out, formats, options, manifest, summary, progress, started):
    done = submitted(client, run_line, todo, str(out), formats, options,
                     key=lambda line: f"lipsync-{line.id}-{keys[line.id]}")  # fmt: skip
    try:
        for line, future in done:
            try:
                record = future.result()
            except Exception as e:  # the task itself was lost (workers died too often)
                record = {"id": line.id, "source": line.source or line.text, "status": "failed",
                          "error": f"the task was lost ({type(e).__name__}: {e})",
                          "fix": "run the batch again: done lines are skipped"}  # fmt: skip
            record["key"] = keys[line.id]
            manifest.add(record)
            if record["status"] == "ok":
                summary.done += 1
                summary.audio_s += record.get("audio_s", 0.0)
            else:
                summary.failed.append(record)
            if progress:
                progress(summary.done, len(summary.failed), len(todo), time.monotonic() - started)
    except KeyboardInterrupt:
        manifest.compact()
        raise


def submitted(client, task, items: list, *args, key: Callable) -> Iterator[tuple]:
    """task(item, *args) for each item on the cluster, named key(item); (item, future) as each
    finishes. Stopping early (Ctrl-C, a cancel) cancels the rest."""
    from distributed import as_completed

    futures = {client.submit(task, item, *args, key=key(item), pure=False): item for item in items}
    try:
        for future in as_completed(futures):
            yield futures[future], future
    except BaseException:
        client.cancel(list(futures))
        raise


class cluster:
    """A Dask client: to `scheduler`, or to a LocalCluster of its own (one process per core).
    The dataset builder runs on it too."""

    def __init__(self, scheduler: str, workers: int):
        self.scheduler, self.workers, self.cluster = scheduler, workers, None

    def __enter__(self):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as e:
            raise EngineUnavailable(f"Dask is not installed ({e}); fix: .venv/bin/pip install "
                                    "'dask[distributed]' (it is in the project's lock)") from e  # fmt: skip
        if not log.isEnabledFor(logging.DEBUG):  # Dask's own INFO lines are for --verbose
            logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as e:
                raise EngineUnavailable(f"no Dask scheduler answers at {self.scheduler} ({e}); "
                                        "fix: start one (`dask scheduler`) and workers "
                                        "(`dask worker ADDRESS`), or leave out --scheduler") from e  # fmt: skip
            return self.client
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        # One process per core, one line at a time each. Dask's profiler samples every worker's
        # stack each 10 ms: a fifth of a line's time here, so it is off (measured: 11.3 -> 9.3 s
        # for 46 lines on one worker, 8.8 s without Dask).
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            self.cluster = LocalCluster(n_workers=self.workers or cores or 1, threads_per_worker=1,
                                        processes=True, dashboard_address=None)  # fmt: skip
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

"""A folder of talking-face videos -> a dataset for lip reading and lip sync, one folder per clip.

    ds/clips/<id>/audio.wav      the sound, 16 kHz mono, on the picture's clock
    ds/clips/<id>/timeline.json  the project's timeline (pipeline.track, oculus15, the video's fps)
    ds/clips/<id>/frames.npz     per video frame: times, lips, controls, valid, visemes, speaking
                                 (the lips' activity, with the lip reader), the landmarker's
                                 ARKit blendshape scores (NaN without a face) (, crops)
    ds/manifest.jsonl            one line per built clip;  ds/failed.jsonl: this run's failures

Pure orchestration over pipeline.track_video: the face is tracked once per clip. A clip is
written to a hidden folder and renamed into place, then its manifest line is appended, so a
clip is either complete and listed or redone by the next run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .core.errors import Cancelled, EngineUnavailable, InputError, LipsyncError, OutputError
from .core.progress import Progress, check_cancel, no_progress, part
from .core.timeline import viseme_at
from .core.visemes import load_set
from .engines import face
from .lipread.reader import speaking
from .media.audio import wav_bytes
from .media.video import iter_frames, probe
from .mouth.controls import CONTROLS, lip_indices
from .pipeline import track_video

VISEME_SET = "oculus15"
DISAGREE_S = 1.0  # lips and sound disagree this long: flagged (in-sync unseen clips: < 0.8 s)
SAMPLE_RATE = 16000
FILES = ("audio.wav", "timeline.json", "frames.npz")
CROP_SIZE = (96, 48)  # width, height of the mouth crops: the 2:1 of a mouth
CROP_PAD = 0.25  # each side of the lips' box grows by this share of its size
VIDEO = ".mp4 .mov .mkv .webm .avi .mpg .mpeg .m4v .flv .wmv .ts .mts .3gp".split()
# Sound files are taken too: they fail with "no video track", which says what is wrong.
AUDIO = ".wav .mp3 .m4a .aac .flac .ogg .opus".split()


@dataclass
class Clip:
    """One video to build, with its transcript and where that came from."""

    id: str
    video: Path
    speaker: str
    transcript: str | None
    transcript_source: str  # "sidecar", "tsv" or "whisper"


@dataclass
class Entry:
    """A built clip's line in manifest.jsonl."""

    id: str
    video: str
    duration: float
    fps: float
    frames: int
    width: int
    height: int
    speaker: str
    transcript: str
    transcript_source: str
    language: str
    words: int
    face_found: float
    av_offset_ms: float | None
    crops: bool
    warnings: list[str] = field(default_factory=list)
    ok: bool = True
    # From the lips alone (lipread.reader.speaking; None without the lip reader): the first to
    # the last moment they speak, and how far that disagrees with the sound's words.
    speaking: list[float] | None = None
    lips_only_s: float | None = None
    sound_only_s: float | None = None
    key: str = ""  # the video's size and time, its transcript and the options: changed -> redone


@dataclass
class Failure:
    """A clip that could not be built (failed.jsonl)."""

    id: str
    video: str
    error: str


@dataclass
class BuildResult:
    built: list[str] = field(default_factory=list)  # clips made by this run
    kept: list[str] = field(default_factory=list)  # clips already complete from a run before
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0  # video built by this run


# --- the build -----------------------------------------------------------------------------


def build(
    videos: str | Path,
    out: str | Path,
    *,
    transcripts: str | Path | None = None,
    crops: bool = False,
    lang: str = "",
    limit: int | None = None,
    scheduler: str = "",
    workers: int = 0,
    progress: Progress = no_progress,
) -> BuildResult:
    """Build every clip of `videos` not yet complete (and unchanged) in `out`; bad clips are
    listed, not fatal. With a Dask `scheduler` or local `workers`, clips build in parallel."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: give a number of videos of at least 1.")
    out = Path(out)
    clips = find_clips(Path(videos), _read_tsv(transcripts) if transcripts else {})[:limit]
    keys = {c.id: clip_key(c, crops, lang) for c in clips}
    done = _prepare(out, keys, crops)
    result = BuildResult()
    try:
        if scheduler or workers:
            result.kept = [c.id for c in clips if c.id in done]
            todo = [c for c in clips if c.id not in done]
            _build_on_dask(todo, keys, out, crops, lang, scheduler, workers, progress, result)
            return result
        with face.reusing():
            for i, clip in enumerate(clips):
                where = f"{clip.id} ({i + 1}/{len(clips)})"
                check_cancel(progress, i / len(clips), where)
                if clip.id in done:
                    result.kept.append(clip.id)
                else:
                    part_progress = _part(progress, i, len(clips), where)
                    outcome = _build_one(clip, out, crops, lang, part_progress)
                    _record(out, clip, keys[clip.id], outcome, result)
    except (KeyboardInterrupt, Cancelled):
        raise Cancelled(
            f"cancelled; the {len(result.built) + len(result.kept)} clips built so far are kept "
            f"in {out}; run the same command again to go on."
        ) from None
    check_cancel(progress, 1.0, "done")
    return result


def _build_one(clip: Clip, out: Path, crops: bool, lang: str,
               progress: Progress = no_progress) -> tuple[str, dict]:  # fmt: skip
    """Build one clip: ("ok", its manifest entry) or ("failed", why: a bad clip is listed and
    the build goes on). A cancel, a missing engine or an unwritable folder is raised: not this
    clip's fault, every clip would fail the same way. Runs on Dask workers too."""
    try:
        entry = _build_clip(clip, out, crops, lang, progress)
    except (Cancelled, EngineUnavailable, OutputError):
        raise
    except Exception as e:
        message = str(e) if isinstance(e, LipsyncError) else f"unexpected {type(e).__name__}: {e}"
        return "failed", asdict(Failure(clip.id, str(clip.video), message))
    return "ok", asdict(entry)


def _record(out: Path, clip: Clip, key: str, outcome: tuple[str, dict], result: BuildResult
            ) -> None:  # fmt: skip
    """A clip's outcome in manifest.jsonl (built, with its key) or failed.jsonl, and in the
    result."""
    status, item = outcome
    if status == "ok":
        _append(out / "manifest.jsonl", item | {"key": key})
        result.built.append(clip.id)
        result.seconds += item["duration"]
    else:
        _append(out / "failed.jsonl", item)
        result.failed.append(Failure(**item))


def clip_key(clip: Clip, crops: bool, lang: str) -> str:
    """What a clip's files depend on; cheap (no reading of the video) for corpora of thousands."""
    stat = clip.video.stat()
    said = json.dumps([stat.st_size, stat.st_mtime_ns, clip.transcript, crops, lang])
    return hashlib.sha256(said.encode()).hexdigest()[:20]


def _build_on_dask(todo, keys, out, crops, lang, scheduler, workers, progress, result) -> None:
    """The clips as Dask tasks (bridge_server.batch's cluster); the manifest is written here,
    as each finishes. A worker lost mid-clip leaves a hidden folder the rerun replaces."""
    from .batch import cluster, submitted

    with cluster(scheduler, workers) as client:
        done = submitted(client, _build_one, todo, out, crops, lang,
                         key=lambda clip: f"clip-{clip.id}-{keys[clip.id]}")  # fmt: skip
        for n, (clip, future) in enumerate(done, 1):
            _record(out, clip, keys[clip.id], future.result(), result)
            check_cancel(progress, n / max(len(todo), 1), f"{clip.id} ({n}/{len(todo)})")


def _part(progress: Progress, i: int, n: int, where: str) -> Progress:
    """Clip i's own progress as a share of the whole build, its stage named after it."""
    return lambda done, stage: progress((i + done) / n, f"{where}: {stage}")


# --- finding the clips ---------------------------------------------------------------------


def find_clips(folder: Path, tsv: dict[str, dict[str, str]]) -> list[Clip]:
    """The media files under `folder` (sorted, so ids and --limit are stable between runs)."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the folder that holds the videos.")
    paths = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in VIDEO + AUDIO and not p.name.startswith(".")
    )  # fmt: skip
    if not paths:
        raise InputError(
            f"no video files in {folder}; give a folder of videos ({', '.join(VIDEO[:6])}...)."
        )
    ids: set[str] = set()
    return [_clip(p, folder, tsv, _unique_id(p, ids)) for p in paths]


def _clip(path: Path, folder: Path, tsv: dict[str, dict[str, str]], clip_id: str) -> Clip:
    row = tsv.get(path.relative_to(folder).as_posix()) or tsv.get(path.name) or {}
    speaker = row.get("speaker") or path.parent.name
    sidecar = path.with_suffix(".txt")
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        return Clip(clip_id, path, speaker, text, "sidecar")
    if row.get("transcript"):
        return Clip(clip_id, path, speaker, row["transcript"], "tsv")
    return Clip(clip_id, path, speaker, None, "whisper")


def _unique_id(path: Path, taken: set[str]) -> str:
    """The file's stem as a safe folder name; a repeated stem gets its folder's name, then a
    number (compared without case: some file systems ignore it)."""
    stem = _safe(path.stem)
    for candidate in (stem, f"{_safe(path.parent.name)}_{stem}"):
        if candidate.lower() not in taken:
            break
    n = 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}_{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:80] or "clip"


def _read_tsv(path: str | Path) -> dict[str, dict[str, str]]:
    """Rows of a transcripts TSV (a header with `file` and `transcript`, maybe `speaker`)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the transcripts {path}: {e}; give a UTF-8 TSV.") from None
    header = lines[0].split("\t") if lines else []
    if "file" not in header or "transcript" not in header:
        raise InputError(
            f"{path} needs a header line with the columns file and transcript (tab-separated), "
            f"e.g. 'file<TAB>transcript<TAB>speaker'; it has {header}."
        )
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]
    return {r["file"].strip(): {k: v.strip() for k, v in r.items()} for r in rows}


# --- resuming ------------------------------------------------------------------------------


def _prepare(out: Path, keys: dict[str, str], crops: bool) -> set[str]:
    """The clips already complete and unchanged (files and manifest line with the clip's key;
    with crops when asked for). The manifest keeps only those, half-made folders go, and
    failed.jsonl starts afresh."""
    clips = out / "clips"
    try:
        clips.mkdir(parents=True, exist_ok=True)
        for stale in clips.glob(".*.partial"):
            shutil.rmtree(stale)
        (out / "failed.jsonl").write_text("")
    except OSError as e:
        raise OutputError(f"cannot write the dataset in {out}: {e.strerror}") from None
    entries = list(_read_jsonl(out / "manifest.jsonl"))
    kept = [
        e
        for e in entries
        if _complete(clips / str(e.get("id")), e, crops)
        and e.get("key", "") in ("", keys.get(e["id"], ""))
    ]  # fmt: skip (older: no key)
    if len(kept) != len(entries):
        _rewrite(out / "manifest.jsonl", kept)
    return {e["id"] for e in kept} & set(keys)


def _complete(folder: Path, entry: dict, crops: bool) -> bool:
    has_files = all((folder / name).is_file() for name in FILES)
    return has_files and entry.get("ok") is True and (entry.get("crops") or not crops)


def _read_jsonl(path: Path) -> Iterator[dict]:
    """The lines of a JSON-lines file; a line cut short by an interrupted run is dropped."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and "id" in item:
            yield item


def _rewrite(path: Path, items: list[dict]) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")
    tmp.replace(path)


def _append(path: Path, item: dict) -> None:
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None


# --- one clip ------------------------------------------------------------------------------


def _build_clip(clip: Clip, out: Path, crops: bool, lang: str, progress: Progress) -> Entry:
    """Track, align and write one clip into a hidden folder, then rename it into place."""
    info = probe(clip.video)
    if not info.has_audio:
        raise InputError(f"{clip.video.name} has no sound; a dataset clip needs its speech.")
    made = track_video(clip.video, text=clip.transcript, lang=lang, viseme_set=VISEME_SET,
                       fps=info.fps or 25.0, progress=part(progress, 0.0, 0.8))  # fmt: skip
    arrays = frame_arrays(made)
    active = speaking(made.mouth)
    if active is not None:
        arrays["speaking"] = active.values.astype(np.float32)
    if crops:
        arrays["crops"] = mouth_crops(clip.video, made.tracking, part(progress, 0.8, 0.95))
    tmp = out / "clips" / f".{clip.id}.partial"
    shutil.rmtree(tmp, ignore_errors=True)  # a worker killed while writing this clip left it
    try:
        _write_clip(tmp, made, arrays)
        final = out / "clips" / clip.id
        if final.exists():  # left by a run cut off before its manifest line
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(1.0, "written")
    return _entry(clip, made, crops, active)


def _write_clip(folder: Path, made, arrays: dict[str, np.ndarray]) -> None:
    try:
        folder.mkdir(parents=True)
        sound = made.sound
        (folder / "audio.wav").write_bytes(wav_bytes(sound.samples, sound.sample_rate))
        (folder / "timeline.json").write_text(made.timeline.to_json(), encoding="utf-8")
        np.savez_compressed(folder / "frames.npz", **arrays)
    except OSError as e:
        raise OutputError(f"cannot write {e.filename or folder}: {e.strerror}") from None


def _entry(clip: Clip, made, crops: bool, active=None) -> Entry:
    timeline, video = made.timeline, made.timeline.source["video"]
    words = [w.text for w in timeline.words]
    entry = Entry(
        id=clip.id,
        video=str(clip.video),
        duration=round(made.info.duration or timeline.duration, 3),
        fps=round(made.info.fps, 3),
        frames=len(made.tracking.times),
        width=made.info.width,
        height=made.info.height,
        speaker=clip.speaker,
        transcript=clip.transcript if clip.transcript is not None else " ".join(words),
        transcript_source=clip.transcript_source,
        language=timeline.source.get("language", ""),
        words=len(words),
        face_found=video["face_found"],
        av_offset_ms=video.get("av_offset_ms"),
        crops=crops,
        warnings=[w.message + (f" (x{w.count})" if w.count > 1 else "") for w in timeline.warnings],
    )
    if active is not None:
        _check_speaking(entry, active, timeline.words)
    return entry


def _check_speaking(entry: Entry, active, words) -> None:
    """Record when the lips speak, and warn where they and the sound's words disagree."""
    if active.spans:
        entry.speaking = [round(active.spans[0][0], 3), round(active.spans[-1][1], 3)]
    lips_only, sound_only = active.against(words)
    entry.lips_only_s, entry.sound_only_s = round(lips_only, 3), round(sound_only, 3)
    if lips_only > DISAGREE_S:
        entry.warnings.append(
            f"the lips speak for {lips_only:.1f} s where the sound has no word: check the sound "
            "(muted, cut, or another take) and its sync (`lipsync sync`) before training on it"
        )
    if sound_only > DISAGREE_S:
        entry.warnings.append(
            f"the sound has words for {sound_only:.1f} s while the lips rest: a voice off "
            "camera, a sound out of sync (`lipsync sync`), or a wrong transcript"
        )


# --- per-frame arrays ----------------------------------------------------------------------


def frame_arrays(made) -> dict[str, np.ndarray]:
    """frames.npz's arrays at the video's frame times (pipeline.VideoTrack -> name: array)."""
    mouth = made.mouth
    names = list(load_set(made.timeline.viseme_set).visemes)
    return {
        "times": mouth.times.astype(np.float64),
        "lips": mouth.lips.astype(np.float32),
        "controls": np.stack([mouth.controls[c] for c in CONTROLS], axis=1).astype(np.float32),
        "valid": mouth.valid.astype(bool),
        "visemes": viseme_at(made.timeline.visemes, names, mouth.times),
        "viseme_names": np.array(names),
        "control_names": np.array(CONTROLS),
    } | _blendshapes(made.tracking)


def _blendshapes(tracking) -> dict[str, np.ndarray]:
    """The face landmarker's ARKit blendshape scores per frame (the Face Mesh has none)."""
    if tracking.blendshapes is None:
        return {}
    return {"blendshapes": tracking.blendshapes.astype(np.float32),
            "blendshape_names": np.array(tracking.blendshape_names)}  # fmt: skip


def mouth_crops(video: Path, tracking, progress: Progress = no_progress) -> np.ndarray:
    """(N, 48, 96) uint8 grey mouth pictures, one per tracked frame, decoded again."""
    import cv2

    boxes = lip_boxes(tracking.points)
    width, height = CROP_SIZE
    crops = np.zeros((len(boxes), height, width), np.uint8)
    for i, (_, image) in enumerate(iter_frames(video)):
        if i >= len(boxes):
            break
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        crops[i] = cv2.resize(_cut(grey, boxes[i]), CROP_SIZE, interpolation=cv2.INTER_AREA)
        if i % 25 == 0:
            check_cancel(progress, i / len(boxes), "cropping mouths")
    return crops


def lip_boxes(points: np.ndarray) -> np.ndarray:
    """(N, 4) integer x0, y0, x1, y1 per frame around the 40 lip points, padded by CROP_PAD and
    widened to the crops' 2:1 (so an opening mouth is not squashed); frames without a face take
    the box of the frames around them."""
    lips = points[:, lip_indices(), :2].astype(float)
    seen = ~np.isnan(lips).any(axis=(1, 2))
    frames = np.arange(len(lips))
    lo, hi = (np.stack([np.interp(frames, frames[seen], edge[:, axis]) for axis in range(2)], 1)
              for edge in (lips[seen].min(axis=1), lips[seen].max(axis=1)))  # fmt: skip
    centre, size = (lo + hi) / 2, (hi - lo) * (1 + 2 * CROP_PAD)
    ratio = CROP_SIZE[0] / CROP_SIZE[1]
    size = np.maximum(size, np.stack([size[:, 1] * ratio, size[:, 0] / ratio], axis=1))
    size = np.maximum(size, 2.0)
    return np.round(np.hstack([centre - size / 2, centre + size / 2])).astype(int)


def _cut(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The box's pixels; parts outside the picture repeat its edge."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = np.pad(image, pad, mode="edge")
    return image[y0 + pad : y1 + pad, x0 + pad : x1 + pad]


def summary(result: BuildResult, out: Path, wall_s: float) -> str:
    """The lines the CLI prints after a build."""
    lines = [
        f"built {len(result.built)} clips ({result.seconds:.1f} s of video in {wall_s:.1f} s), "
        f"{len(result.kept)} already there -> {out}"
    ]
    if result.failed:
        lines.append(
            f"{len(result.failed)} failed (see {out / 'failed.jsonl'}): "
            + ", ".join(f.id for f in result.failed)
        )
    return "\n".join(lines)

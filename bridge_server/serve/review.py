"""Listening tests: a page that plays each line with a 2D mouth, and ratings kept in SQLite.

`lipsync review LINES/` serves the bridge's app plus the /review routes. A line is a sound
(`take.wav`) with its timelines (`take.json`, `take.<variant>.json`); the folder is scanned
once at start and lines are named by id, never by a path the page sends. Ratings go into one
SQLite table (stdlib sqlite3), exported as CSV.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ..core.errors import InputError, TimelineFormatError
from ..core.phonemes import DATA
from ..core.timeline import Timeline
from ..core.visemes import load_set
from .errors import ApiError, responses

SOUNDS = {".wav": "audio/wav", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".mp3": "audio/mpeg",
          ".flac": "audio/flac", ".m4a": "audio/mp4", ".opus": "audio/ogg"}  # fmt: skip
DEFAULT_VARIANT = "default"  # the variant of a plain `take.json`
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
STATIC = Path(__file__).resolve().parents[1] / "static" / "review"
PAGES = {"index.html": "text/html; charset=utf-8", "review.css": "text/css; charset=utf-8"} | {
    name: "text/javascript; charset=utf-8" for name in ("review.js", "mouth.js", "strip.js")
}
CONTROLS = DATA / "viseme_controls.json"
SOUND = {
    200: {"content": {m: {} for m in sorted(set(SOUNDS.values()))}, "description": "the sound"}
}


# --- the lines folder ------------------------------------------------------------------------


@dataclass
class Line:
    """One sound and its timelines, by variant name (`take.espeak.json` -> "espeak")."""

    id: str
    sound: Path
    timelines: dict[str, Path]
    text: str = ""
    duration: float = 0.0

    def summary(self) -> dict:
        return {"id": self.id, "name": self.sound.name, "text": self.text,
                "duration": round(self.duration, 3), "variants": list(self.timelines)}  # fmt: skip


@dataclass
class Lines:
    """What a scan found: lines by id, and the files left out with why."""

    folder: Path
    by_id: dict[str, Line] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def scan(folder: str | Path) -> Lines:
    """Every sound under `folder` with at least one readable timeline, as a line with an id."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; give the folder that holds the lines")
    found = Lines(root.resolve())
    for sound in sorted(p for p in root.rglob("*") if p.suffix.lower() in SOUNDS):
        line = _line(root, sound, found)
        if line is not None:
            found.by_id[line.id] = line
    if not found.by_id:
        raise InputError(
            f"{root} holds no line: put a sound (take.wav) beside its timeline (take.json or "
            "take.<variant>.json, as 'lipsync say --timeline' writes)"
        )
    return found


def _line(root: Path, sound: Path, found: Lines) -> Line | None:
    timelines, text, duration = {}, "", 0.0
    for path in sorted(sound.parent.glob(f"{glob.escape(sound.stem)}*.json")):
        variant = _variant(sound.stem, path.name)
        if variant is None:
            continue
        try:
            timeline = Timeline.load(path)
        except (TimelineFormatError, InputError, OSError) as e:
            found.skipped.append(f"{path.relative_to(root)}: {e}")
            continue
        timelines[variant] = path
        text = text or " ".join(w.text for w in timeline.words)
        duration = max(duration, timeline.duration)
    if not timelines:
        found.skipped.append(f"{sound.relative_to(root)}: no timeline beside it")
        return None
    return Line(_unique_id(root, sound, found.by_id), sound, timelines, text, duration)


def _variant(stem: str, name: str) -> str | None:
    """`take.json` -> default, `take.piper.json` -> piper; another line's file -> None."""
    if name == f"{stem}.json":
        return DEFAULT_VARIANT
    middle = name[len(stem) + 1 : -len(".json")] if name.startswith(stem + ".") else ""
    return middle if ID.fullmatch(middle) else None


def _unique_id(root: Path, sound: Path, taken: dict) -> str:
    """The sound's path in the folder as a name: `a/take 1.wav` -> `a-take-1`."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", str(sound.relative_to(root).with_suffix("")))
    base = base.strip("-_")[:70] or "line"
    ident, n = base, 2
    while ident in taken:
        ident, n = f"{base}-{n}", n + 1
    return ident


# --- the mouth: what each curve channel or viseme does to open / wide / round / closed --------


def mouth_shapes(viseme_set: str, channels: list[str]) -> dict:
    """How the page's mouth reads a timeline: `curves` when every channel is a viseme of the
    set with a known shape, else the viseme cues; and each viseme's {open, wide, round, closed}."""
    try:
        names = set(load_set(viseme_set).visemes)
    except InputError:  # a set this version does not know: the cues, all at rest
        names = set()
    controls = _controls(viseme_set, names)
    shapes = {name: _shape(controls.get(name, {})) for name in names | set(controls)}
    source = "curves" if channels and set(channels) <= set(shapes) else "visemes"
    return {"source": source, "shapes": shapes}


@functools.cache
def _table() -> dict:
    return json.loads(CONTROLS.read_text())["sets"]


def _controls(viseme_set: str, names: set[str]) -> dict:
    """The set's typical mouth controls per viseme; ARKit's visemes are Oculus 15's classes."""
    table = _table()
    if viseme_set in table:
        return table[viseme_set]
    return table["oculus15"] if names <= set(table["oculus15"]) | {"sil"} else {}


def _shape(c: dict) -> dict:
    def clip(x: float) -> float:
        return round(min(1.0, max(0.0, x)), 3)

    smile = (c.get("smile_left", 0) + c.get("smile_right", 0)) / 2
    return {
        "open": clip(max(c.get("jaw_open", 0), c.get("lips_apart", 0))),
        "wide": clip(c.get("stretch", 0) + smile),
        "round": clip(c.get("funnel", 0) + c.get("pucker", 0)),
        "closed": clip(c.get("mouth_close", 0) + 0.5 * c.get("lower_lip_raise", 0)),
    }


# --- ratings ---------------------------------------------------------------------------------

COLUMNS = ("id", "created_at", "rater", "session", "line", "mode", "variant", "sync",
           "naturalness", "comment", "left_variant", "right_variant", "preferred")  # fmt: skip
SCHEMA = """CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,        -- ISO 8601, UTC
    rater TEXT NOT NULL,
    session TEXT NOT NULL,
    line TEXT NOT NULL,              -- the line's id
    mode TEXT NOT NULL,              -- 'single' (one timeline rated) or 'ab' (two compared)
    variant TEXT NOT NULL,           -- single: the variant rated; ab: the one preferred ('' same)
    sync INTEGER,                    -- 1..5, single only
    naturalness INTEGER,             -- 1..5, single only
    comment TEXT NOT NULL,
    left_variant TEXT,               -- ab: the variant shown as A (left)
    right_variant TEXT,              -- ab: the variant shown as B (right)
    preferred TEXT                   -- ab: 'left', 'right' or 'same'
)"""


class Store:
    """One SQLite table of ratings; a connection per call, so any thread may write."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with self._connect() as db:
                db.execute(SCHEMA)
        except sqlite3.Error as e:
            raise InputError(f"cannot keep ratings in {self.path} ({e}); give --db FILE") from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, row: dict) -> int:
        row = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")} | row
        names = ", ".join(row)
        with self._connect() as db:
            cursor = db.execute(
                f"INSERT INTO ratings ({names}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
        return cursor.lastrowid

    def rows(self) -> list[tuple]:
        with self._connect() as db:
            return db.execute(f"SELECT {', '.join(COLUMNS)} FROM ratings ORDER BY id").fetchall()

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(self.rows())
        return out.getvalue()


@dataclass
class Review:
    """What `lipsync review` serves: the lines found at start and the ratings store."""

    lines: Lines
    store: Store

    @classmethod
    def open(cls, folder: str | Path, db: str | Path | None = None) -> Review:
        lines = scan(folder)
        return cls(lines, Store(db or lines.folder / "ratings.sqlite"))


# --- HTTP ------------------------------------------------------------------------------------

Score = Annotated[int, Field(ge=1, le=5, description="1 (bad) .. 5 (excellent)")]
Short = Annotated[str, Field(max_length=80)]


class Who(BaseModel):
    line: str = Field(..., description="a line id from GET /review/lines")
    rater: str = Field(..., min_length=1, max_length=80, description="who rates")
    session: Short = ""
    comment: str = Field("", max_length=4000)


class Rating(Who):
    """One timeline of a line, rated for sync and naturalness."""

    variant: str
    sync: Score
    naturalness: Score


class Comparison(Who):
    """Two timelines of a line shown side by side as A (left) and B (right): which is better."""

    left: str = Field(..., description="the variant shown as A")
    right: str = Field(..., description="the variant shown as B")
    preferred: Literal["left", "right", "same"]


def router(review: Review) -> APIRouter:
    """The /review routes over one scanned folder and one store, and / leading to the page."""
    api = APIRouter(prefix="/review", tags=["review"])
    lines = review.lines

    def line(line_id: str) -> Line:
        if not ID.fullmatch(line_id):
            raise ApiError(400, f"{line_id!r} is not a line id; ids are names such as "
                           "'take01' from GET /review/lines, never paths")  # fmt: skip
        if line_id not in lines.by_id:
            raise ApiError(404, f"no line {line_id!r}; GET /review/lines lists them")
        return lines.by_id[line_id]

    def timeline_path(found: Line, variant: str) -> Path:
        if variant not in found.timelines:
            known = ", ".join(found.timelines)
            raise ApiError(404, f"line {found.id!r} has no variant {variant!r}; it has: {known}")
        return found.timelines[variant]

    @api.get("", include_in_schema=False)
    def page_root() -> Response:
        return RedirectResponse("/review/")

    @api.get("/", include_in_schema=False)
    def page() -> Response:
        return static("index.html")

    @api.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in PAGES:
            raise ApiError(404, f"no page file {name!r}")
        return FileResponse(STATIC / name, media_type=PAGES[name])

    @api.get("/lines")
    def list_lines() -> dict:
        return {"lines": [x.summary() for x in lines.by_id.values()], "skipped": lines.skipped}

    @api.get("/lines/{line_id}/audio", response_class=FileResponse,
             responses=SOUND | responses(400, 404))  # fmt: skip
    def audio(line_id: str) -> Response:
        sound = line(line_id).sound
        return FileResponse(sound, media_type=SOUNDS[sound.suffix.lower()])

    @api.get("/lines/{line_id}/timelines/{variant}", responses=responses(400, 404))
    def timeline(line_id: str, variant: str) -> dict:
        loaded = Timeline.load(timeline_path(line(line_id), variant))
        mouth = mouth_shapes(loaded.viseme_set, [c.channel for c in loaded.curves])
        return {"variant": variant, "timeline": loaded.to_dict(), "mouth": mouth}

    @api.post("/ratings", status_code=201, responses=responses(400, 404))
    def rate(rating: Rating) -> dict:
        timeline_path(line(rating.line), rating.variant)
        row = rating.model_dump() | {"mode": "single"}
        return {"id": review.store.add(row)}

    @api.post("/comparisons", status_code=201, responses=responses(400, 404))
    def compare(c: Comparison) -> dict:
        found = line(c.line)
        for variant in (c.left, c.right):
            timeline_path(found, variant)
        if c.left == c.right:
            raise ApiError(400, "left and right are the same variant; compare two different ones")
        chosen = {"left": c.left, "right": c.right, "same": ""}[c.preferred]
        row = c.model_dump(exclude={"left", "right"})
        row |= {"mode": "ab", "variant": chosen, "left_variant": c.left, "right_variant": c.right}
        return {"id": review.store.add(row)}

    @api.get(
        "/ratings.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "every rating"}},
    )
    def ratings_csv() -> Response:
        return Response(review.store.csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="ratings.csv"'})  # fmt: skip

    # `lipsync review` serves only the page: the server's root leads to it instead of a 404
    top = APIRouter()
    top.add_api_route("/", lambda: RedirectResponse("/review/"), include_in_schema=False)
    top.include_router(api)
    return top

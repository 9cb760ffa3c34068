"""Request and response models of the HTTP API. The animation options are made from the core's
`option_fields()`, so the CLI, these models and the add-on offer one definition.

Names from fixed lists (viseme sets, rig presets, OSC presets, grammars, formats) and text rules
are stated in the schema (`one_of`, `TEXT`) but checked by the core, whose 400 answer names
the choices; ranges are checked here (422).
"""

from __future__ import annotations

import json
from dataclasses import Field as DataclassField
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..core.curves import MOTIONS, Animation, option_fields
from ..core.errors import InputError
from ..core.rigs import RigMapping, apply, presets, resolve
from ..core.text import MAX_CHARS
from ..core.timeline import Timeline
from ..core.visemes import available_sets
from ..lipread.model import METHODS
from ..lipread.reader import grammar_names
from ..osc.stream import preset_names
from ..speech.recognize import AUDIO_ENGINES, TRANSCRIBE_ENGINES
from .settings import PLAYBACK_LIMIT_S

MAPPING = 'or the shape key for each channel of visemes, as chosen: {"PP": "Mouth_Closed", ...}'

NONBLANK = {"type": "string", "minLength": 1, "pattern": r"\S"}
TEXT = NONBLANK | {"maxLength": MAX_CHARS}  # what check_text refuses at once
KEYS = {"type": "array", "items": {"type": "string"}, "minItems": 1}  # resolve refuses none


def one_of(names: list[str], optional: bool = False) -> dict:
    """A JSON-schema enum for a name the core checks (its 400 answer lists the names)."""
    listed = {"type": "string", "enum": list(names)}
    return {"anyOf": [listed, {"type": "null"}]} if optional else listed


def schema(extra: dict):
    """json_schema_extra that replaces the generated type with `extra` (anyOf, enum, ...)."""

    def update(s: dict) -> None:
        s.pop("anyOf", None)
        s.pop("type", None)
        s.update(extra)

    return update


def _form(described: dict) -> None:
    """Form fields are never null (multipart has none): an optional one is left out, or sent
    empty, which FastAPI reads as left out."""
    required = set(described.get("required", []))
    for name, field in described.get("properties", {}).items():
        kinds = [k for k in field.pop("anyOf", []) if k.get("type") != "null"]
        field.update(kinds[0] if len(kinds) == 1 else {"anyOf": kinds} if kinds else {})
        if name not in required:
            _empty_allowed(field)


def _empty_allowed(field: dict) -> None:
    if "enum" in field:
        field["enum"] = [*field["enum"], ""]
    elif field.get("type") != "string" or field.get("minLength"):
        kind = {
            k: field.pop(k) for k in list(field) if k not in ("title", "description", "default")
        }
        field["anyOf"] = [kind, {"type": "string", "maxLength": 0}]


FORM = ConfigDict(json_schema_extra=_form)


def _option(f: DataclassField) -> tuple:
    """One option as a pydantic field: its default, range and help from the dataclass."""
    help, lo, hi = f.metadata["help"], f.metadata.get("min"), f.metadata.get("max")
    if f.metadata.get("choices"):  # one of a few words
        return str, Field(f.default, description=help,
                          json_schema_extra=schema(one_of(f.metadata["choices"])))  # fmt: skip
    if isinstance(f.default, str):  # a viseme set: unset means the rig's, else the default
        names = schema(one_of(available_sets(), optional=True))
        text = f"{help} (default {f.default}, or the rig's)"
        return str | None, Field(None, description=text, json_schema_extra=names)
    return type(f.default), Field(f.default, ge=lo, le=hi, description=help)


class Options(BaseModel):
    """The animation options; its fields are added from option_fields() below."""

    visemes: str | None = None
    rig: str | None = Field(
        None, description="a rig preset (GET /rigs): curves get its names",
        json_schema_extra=schema(one_of(presets(), optional=True)),
    )  # fmt: skip

    def keys(self) -> list[str] | None:
        """The rig's own shape-key names, when the request gave them."""
        return None

    def chosen(self) -> dict[str, str] | None:
        """The user's own shape key per channel, when the request gave them."""
        return None

    def rig_mapping(self) -> RigMapping | None:
        """The rig mapping asked for, or None; refused at once when it cannot be made."""
        keys, chosen = self.keys(), self.chosen()
        if not (self.rig or keys is not None or chosen is not None):
            return None
        return resolve(self.rig, keys, self.visemes, chosen)

    def animation(self, mapping: RigMapping | None) -> Animation:
        visemes = mapping.viseme_set if mapping else self.visemes
        return Animation.from_flat(**(self.model_dump() | {"visemes": visemes}))

    def finish(self, timeline: Timeline, mapping: RigMapping | None) -> dict:
        """The job's result: the timeline, its curves renamed after the rig when one was given."""
        if mapping is None:
            return {"timeline": timeline}
        return {"timeline": apply(timeline, mapping), "rig": mapping.to_dict()}


AnimationOptions = create_model(
    "AnimationOptions",
    __base__=Options,
    __doc__="How the mouth moves, and for which shapes (the CLI's animation options).",
    **{f.name: _option(f) for f in option_fields()},
)


class TextRequest(AnimationOptions):
    text: str = Field(..., description="the line to speak (up to 20,000 characters)",
                      json_schema_extra=TEXT)  # fmt: skip
    shape_keys: list[str] | None = Field(
        None, description="or the rig's own shape-key names, matched to visemes (not both)",
        json_schema_extra=schema({"anyOf": [KEYS, {"type": "null"}]}),
    )  # fmt: skip
    engine: Literal["espeak", "piper"] = "espeak"
    voice: str = Field(
        "",
        description="the voice (GET /voices lists them), 'auto' to pick it "
        "from the text's script, or empty for the engine's default",
    )
    lang: str = ""
    mapping: dict[str, str] | None = Field(None, description=MAPPING)
    rate_wpm: int | None = Field(None, ge=80, le=450)
    wait: bool = False

    def keys(self) -> list[str] | None:
        return self.shape_keys

    def chosen(self) -> dict[str, str] | None:
        return self.mapping


class RigForm(AnimationOptions):
    """The rig as form fields: its shape-key names, or the user's own choice per channel."""

    model_config = FORM

    shape_keys: str | None = Field(
        None, description="or the rig's shape-key names, comma-separated (not both)"
    )
    mapping: str | None = Field(None, description=MAPPING + ", as JSON")

    def keys(self) -> list[str] | None:
        return [k.strip() for k in self.shape_keys.split(",")] if self.shape_keys else None

    def chosen(self) -> dict[str, str] | None:
        if not self.mapping:
            return None
        try:
            chosen = json.loads(self.mapping)
        except ValueError:
            chosen = None
        if not isinstance(chosen, dict) or not all(isinstance(v, str) for v in chosen.values()):
            raise InputError('mapping must be a JSON object of channel -> shape key, e.g. '
                             '{"PP": "Mouth_Closed"}')  # fmt: skip
        return chosen


class AudioForm(RigForm):
    """/lipsync/audio's form fields beside the file."""

    text: str | None = Field(None, description="the script (optional)")
    engine: Literal[tuple(AUDIO_ENGINES)] = "auto"  # type: ignore[valid-type]
    model: str = "auto"
    lang: str = ""
    wait: bool = False


class VideoForm(AudioForm):
    """/lipsync/video's form fields: the audio's, and how the face shapes the mouth."""

    video_weight: float = Field(0.5, ge=0, le=1, description="how much the face shapes the mouth")
    face_model: Literal["auto", "landmarker", "facemesh"] = "auto"


class TranscribeForm(BaseModel):
    """/transcribe's form fields beside the file."""

    model_config = FORM

    engine: Literal[tuple(TRANSCRIBE_ENGINES)] = "whisper"  # type: ignore[valid-type]
    lang: str = Field("", description="the speech's language, e.g. en, cs (empty: detected)")
    wait: bool = False


class SyncForm(BaseModel):
    """/sync's form fields beside the video."""

    model_config = FORM

    wait: bool = False


class ScriptForm(RigForm):
    """/lipread/script's form fields beside the video."""

    text: str = Field(..., description="the script the speaker says", json_schema_extra=TEXT)
    wait: bool = False


class LipreadForm(BaseModel):
    """/lipread's form fields beside the video: choices or grammar, one of them."""

    model_config = FORM

    choices: str | None = Field(
        None, description="candidate lines, one per line: which is said?",
        json_schema_extra=schema({"anyOf": [NONBLANK, {"type": "null"}]}),
    )  # fmt: skip
    grammar: str | None = Field(
        None, description="or a built-in sentence grammar",
        json_schema_extra=schema(one_of(grammar_names(), optional=True)),
    )  # fmt: skip
    best: int = Field(5, ge=1, le=100)
    method: Literal[METHODS] = Field(  # type: ignore[valid-type]
        "model", description="the bridge's trained lip reader, or template matching (untrained)"
    )
    wait: bool = False


class OscTarget(BaseModel):
    to: str = Field("127.0.0.1:9000", description="the receiver, HOST:PORT")
    preset: str = Field("generic", description="the receiver's address preset",
                        json_schema_extra=one_of(preset_names()))  # fmt: skip
    fps: float = Field(60.0, ge=1, le=240)


class OscRequest(OscTarget):
    """Play a timeline's curves over OSC in real time (`lipsync osc` over HTTP)."""

    job_id: str | None = Field(None, description="a finished lip-sync job whose timeline to play")
    timeline: dict | None = Field(None, description="or a timeline document")
    start_in: float = Field(0.1, ge=0, le=60, description="seconds from now to frame 0")
    loop: bool = False
    names: dict[str, str] | None = Field(None, description="channel -> name on the receiver")


class LiveRequest(OscTarget):
    """Send the mouth over OSC as the server's microphone hears it (`lipsync osc --live`)."""

    device: str | None = Field(None, description="input device name or number (GET /osc/devices)")
    seconds: float | None = Field(None, gt=0, le=PLAYBACK_LIMIT_S, description="stop after")
    motion: str = Field("learned", description="learned (the live motion model hears the "
                        "sound, any language) or rules (the English phone loop)",
                        json_schema_extra=schema(one_of(list(MOTIONS))))  # fmt: skip


class RigMatch(BaseModel):
    shape_keys: list[str] = Field(..., description="the rig's shape-key names",
                                  json_schema_extra=KEYS)  # fmt: skip
    visemes: str | None = Field(
        None, description="the viseme set to match (default: the one that fits best)",
        json_schema_extra=schema(one_of(available_sets(), optional=True)),
    )  # fmt: skip


# --- answers ---------------------------------------------------------------------------------


class JobSummary(BaseModel):
    """A job's state: everything but its result."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float
    stage: str
    error: str
    error_type: str
    created: float
    started: float | None
    finished: float | None
    seconds: float


class JobStarted(BaseModel):
    job: JobSummary
    links: dict[str, str]


class HeardWord(BaseModel):
    text: str
    start: float = Field(..., description="seconds from the start of the recording")
    end: float


class Transcript(BaseModel):
    """What a recording says (POST /transcribe): the words heard, their times, the language."""

    text: str = Field(..., description="the words heard, in one line (empty: no speech)")
    words: list[HeardWord]
    language: str = Field(..., description="detected, or as given")
    warnings: list[str]


class SyncSegment(BaseModel):
    start: float
    end: float
    offset_ms: float
    confidence: float


class SyncMeasured(BaseModel):
    """How late the sound is against the lips (POST /sync)."""

    offset_ms: float = Field(..., description="+: the sound is late; move it earlier by this")
    confidence: float = Field(..., description="how far the best offset stands out (0: not)")
    reason: str = Field(..., description="why the confidence is low, in words ('' when it is not)")
    segments: list[SyncSegment] = Field(..., description="per segment of a long take (drift)")
    container_delay_ms: float = Field(
        ...,
        description="the file's own delay of the sound after the picture; players that "
        "ignore it (Blender's sound strips) see offset_ms minus this",
    )
    curve: list[list[float | None]] = Field(..., description="[offset ms, score] within ±1 s")

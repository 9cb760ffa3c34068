"""What this bridge offers: health, engines, voices, options, viseme sets, rig presets and rig
matching."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ... import engines
from ...core.rigs import load_preset, match, presets
from ...core.visemes import available_sets
from ...pipeline import choices
from ...speech.voices import installed_voices
from ..errors import responses
from ..schemas import RigMatch

router = APIRouter(tags=["info"])


@router.get("/health")
def health(request: Request) -> dict:
    return {"status": "ok", "version": request.app.version}


@router.get("/engines")
def list_engines() -> list[dict]:
    rows = [engines.status(info) for info in engines.ENGINES]
    return [
        {
            "name": s.engine.name,
            "role": s.engine.role,
            "job": s.engine.job,
            "available": s.available,
            "detail": s.detail,
        }
        for s in rows
    ]


@router.get("/voices")
def list_voices() -> dict:
    """Every installed voice: engine, the name the voice field takes, language, the writing
    systems it reads; and the speech engines missing here, with why."""
    rows, missing = installed_voices()
    return {"voices": rows, "missing": missing}


@router.get("/options")
def options() -> dict:
    """The animation options (default, range, help), engines per input and viseme sets."""
    return choices()


@router.get("/viseme-sets")
def viseme_sets() -> list[str]:
    return available_sets()


@router.get("/rigs")
def list_rigs() -> list[dict]:
    return [load_preset(name).to_dict() for name in presets()]


@router.post("/rigs/match", responses=responses(400))
def match_rig(body: RigMatch) -> dict:
    return match(body.shape_keys, body.visemes).to_dict()

"""/lipread: which of some lines a silent speaker says, and a script timed to their lips."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from ...lipread.reader import grammar_names, lipread, load_grammar, time_script_to_video
from ..errors import ApiError, builtin, responses
from ..schemas import LipreadForm, ScriptForm
from .jobs import STARTED, started
from .lipsync import MAKES, NONEMPTY, check_now, upload

router = APIRouter(prefix="/lipread", tags=["lipread"])
VIDEO = "a video of the speaker (sound unused)"
RANKED = {200: {"description": "the candidate lines, most likely first (wait=true)"}}


@router.post("", status_code=202, responses=STARTED | RANKED | responses(400, 409, 429, 500, 503))
async def read_lips(
    request: Request,
    file: Annotated[UploadFile, File(description=VIDEO, json_schema_extra=NONEMPTY)],
    form: Annotated[LipreadForm, Form()],
) -> Response:
    data, name = await upload(file, "uploaded video", "send a video of the speaker")
    lines = (
        [c for c in form.choices.splitlines() if c.strip()] if form.choices is not None else None
    )
    slots = grammar_slots(lines, form.grammar)
    reader = request.app.state.lipreader if form.method == "model" else None
    if form.method == "model" and reader is None:
        raise ApiError(503, "this bridge has no lip-reading model (models/lipreader.onnx is "
                       "missing); start it with 'lipsync serve --lipreader FILE.onnx', or send "
                       "method=template")  # fmt: skip

    def work(progress):
        found = lipread(data, lines, slots, best=form.best, model=reader, name=name,
                        progress=progress)  # fmt: skip
        return {"candidates": [c.to_dict() for c in found]}

    return started(request.app.state.jobs, "lipread", work, form.wait)


@router.post("/script", status_code=202, responses=MAKES)
async def lipread_script(
    request: Request,
    file: Annotated[UploadFile, File(description=VIDEO, json_schema_extra=NONEMPTY)],
    form: Annotated[ScriptForm, Form()],
) -> Response:
    data, name = await upload(file, "uploaded video", "send a video of the speaker")
    mapping = form.rig_mapping()
    animation = form.animation(mapping)
    check_now(animation.visemes, form.text)

    def work(progress):
        timeline = time_script_to_video(
            data, form.text, viseme_set=animation.visemes, fps=animation.fps,
            curve_settings=animation.curves, name=name, progress=progress,
        )  # fmt: skip
        return form.finish(timeline, mapping)

    return started(request.app.state.jobs, "lipread", work, form.wait)


def grammar_slots(lines: list[str] | None, grammar: str | None):
    """A built-in grammar's slots (never a path on the server), or None when lines are given."""
    if (lines is None) == (grammar is None):
        raise ApiError(400, "give choices (candidate lines, one per line) or grammar, one of them")
    if lines is not None:
        if not lines:
            raise ApiError(400, "choices holds no line; send one candidate sentence per line")
        return None
    return load_grammar(builtin(grammar, grammar_names(), "grammar"))

"""/transcribe: only what a recording says (its words, their times, the language), as a job;
quicker than /lipsync/audio, which also aligns and animates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from ...pipeline import transcribe
from ..errors import responses
from ..schemas import JobStarted, TranscribeForm, Transcript
from .jobs import started
from .lipsync import NONEMPTY, upload

router = APIRouter(tags=["transcribe"])
HEARD = {  # what the job answers: the transcript, at once (wait) or from /jobs/{id}/result
    202: {"model": JobStarted, "description": "the job, queued"},
    200: {"model": Transcript, "description": "the transcript (wait)"},
} | responses(400, 409, 429, 500, 503)  # 409, 500, 503: a waited-for job failed


@router.post(
    "/transcribe",
    status_code=202,
    responses=HEARD,
    summary="The words a recording says, with their times",
    description="Whisper's words and their times, the language and any warnings; nothing is "
    "aligned or animated (POST /lipsync/audio does that). The result: {text, words, language, "
    "warnings}.",
)
async def transcribe_upload(
    request: Request,
    file: Annotated[
        UploadFile,
        File(description="audio, or a video with a sound track", json_schema_extra=NONEMPTY),
    ],
    form: Annotated[TranscribeForm, Form()],
) -> Response:
    data, name = await upload(file, "uploaded audio", "send a file with sound")

    def work(progress):
        heard = transcribe(data, engine=form.engine, lang=form.lang, name=name, progress=progress)
        return {"transcript": heard.to_dict()}

    return started(request.app.state.jobs, "transcript", work, form.wait)

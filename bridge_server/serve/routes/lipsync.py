"""/lipsync: a timeline from text (spoken by a voice), from a recording, or from a video's sound
and face. Each makes a job (`jobs.started`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Request, UploadFile
from fastapi.responses import Response

from ...core.text import check_text
from ...core.visemes import load_set
from ...media.audio import load_audio
from ...pipeline import bake, say, track
from ...speech.voices import choose_voice
from ..errors import ApiError, responses
from ..schemas import AudioForm, TextRequest, VideoForm
from .jobs import STARTED, started

router = APIRouter(prefix="/lipsync", tags=["lipsync"])
MAKES = STARTED | responses(400, 409, 429, 500, 503)  # 409, 500, 503: a waited-for job failed
NONEMPTY = {"format": "binary", "minLength": 1}  # any bytes but none (refused: 400)


@router.post("/text", status_code=202, responses=MAKES)
def lipsync_text(request: Request, body: Annotated[TextRequest, Body()]) -> Response:
    mapping = body.rig_mapping()
    animation = body.animation(mapping)
    check_now(animation.visemes, body.text)
    choose_voice(body.text, body.engine, body.voice, body.lang)  # one that cannot read it: 400

    def work(progress):
        speech, timeline = say(
            body.text, engine=body.engine, voice=body.voice, lang=body.lang,
            rate_wpm=body.rate_wpm, viseme_set=animation.visemes, fps=animation.fps,
            settings=animation.curves, progress=progress,
        )  # fmt: skip
        return body.finish(timeline, mapping) | {"speech": speech}

    return started(request.app.state.jobs, "text", work, body.wait)


@router.post("/audio", status_code=202, responses=MAKES)
async def lipsync_audio(
    request: Request,
    file: Annotated[
        UploadFile,
        File(description="audio, or a video with a sound track", json_schema_extra=NONEMPTY),
    ],
    form: Annotated[AudioForm, Form()],
) -> Response:
    data, name = await upload(file, "uploaded audio", "send a file with sound")

    def timeline(**options):
        return bake(load_audio(data, name=name), **options)

    return upload_job(request, "audio", form, timeline)


@router.post(
    "/video",
    status_code=202,
    responses=MAKES,
    summary="Lip sync from a reference video: its sound and the speaker's face",
    description="As /lipsync/audio, plus the face tracked in the picture: the timeline gets "
    "lip landmarks and mouth controls, and the curves follow the face by video_weight.",
)
async def lipsync_video(
    request: Request,
    file: Annotated[
        UploadFile, File(description="a video with a sound track", json_schema_extra=NONEMPTY)
    ],
    form: Annotated[VideoForm, Form()],
) -> Response:
    data, name = await upload(file, "uploaded audio", "send a file with sound")

    def timeline(**options):
        return track(data, name=name, video_weight=form.video_weight,
                     face_model=form.face_model, **options)  # fmt: skip

    return upload_job(request, "video", form, timeline)


def upload_job(request: Request, kind: str, form: AudioForm, timeline) -> Response:
    """The job for an upload: `timeline(**options)` timed by its sound, named after the rig."""
    mapping = form.rig_mapping()
    animation = form.animation(mapping)
    check_now(animation.visemes)

    def work(progress):
        made = timeline(
            text=form.text if form.text and form.text.strip() else None, engine=form.engine,
            model=form.model, lang=form.lang, viseme_set=animation.visemes, fps=animation.fps,
            settings=animation.curves, progress=progress,
        )  # fmt: skip
        return form.finish(made, mapping)

    return started(request.app.state.jobs, kind, work, form.wait)


async def upload(file: UploadFile, unnamed: str, fix: str) -> tuple[bytes, str]:
    """The uploaded bytes and the file's name; an empty file is refused."""
    data, name = await file.read(), file.filename or unnamed
    if not data:
        raise ApiError(400, f"{name} is empty (0 bytes); {fix}")
    return data, name


def check_now(visemes: str, text: str | None = None) -> None:
    """What can be refused at once is, before a job is made."""
    load_set(visemes)
    if text is not None:
        check_text(text)

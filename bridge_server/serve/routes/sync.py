"""/sync: how late a video's sound is against the speaker's lips (the learned sync model), as
a job; the add-on's Check Sync and `lipsync sync` over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from ...pipeline import sync
from ..errors import responses
from ..schemas import JobStarted, SyncForm, SyncMeasured
from .jobs import started
from .lipsync import NONEMPTY, upload

router = APIRouter(tags=["sync"])
MEASURED = {
    202: {"model": JobStarted, "description": "the job, queued"},
    200: {"model": SyncMeasured, "description": "the offset (wait)"},
} | responses(400, 409, 429, 500, 503)  # 409, 500, 503: a waited-for job failed


@router.post(
    "/sync",
    status_code=202,
    responses=MEASURED,
    summary="How late the sound is against the lips",
    description="The offset of a video's sound against its speaker's lips (+: the sound is "
    "late), a confidence, why it is low where it is, the offset per segment of a long take "
    "(drift) and the score at each offset within ±1 s.",
)
async def measure_sync(
    request: Request,
    file: Annotated[
        UploadFile,
        File(description="a video of the speaker, with its sound", json_schema_extra=NONEMPTY),
    ],
    form: Annotated[SyncForm, Form()],
) -> Response:
    data, name = await upload(file, "uploaded video", "send a video of the speaker with its sound")

    def work(progress):
        found = sync(data, name=name, progress=progress)
        return {"sync": {
            "offset_ms": round(found.offset_ms, 1), "confidence": round(found.confidence, 2),
            "reason": found.reason, "segments": found.segments,
            "container_delay_ms": found.container_delay_ms,
            "curve": [[round(float(ms), 1), None if v != v else round(float(v), 4)]
                      for ms, v in found.curve],
        }}  # fmt: skip

    return started(request.app.state.jobs, "sync", work, form.wait)

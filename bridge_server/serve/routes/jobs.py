"""/jobs: the lip-sync jobs, their state, results, rig mapping and speech; and the answer every
job-making route gives (the job at once, or its result when the client waits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ...formats.exporters import FORMATS, export
from ...media.audio import wav_bytes
from ..errors import STATUS, ApiError, responses
from ..jobs import Job, Jobs
from ..schemas import JobStarted, JobSummary, one_of

router = APIRouter(prefix="/jobs", tags=["jobs"])

TIMELINE = {  # what a finished job answers: the timeline, an export of it, ranked lines or words
    "description": "the timeline document, an export format's text, ranked candidates (lip "
    "reading) or a transcript (/transcribe)",
    "content": {"application/json": {}, "text/plain": {"schema": {"type": "string"}}},
}
FAILED = (400, 404, 409, 500, 503)  # what a failed or unfinished job answers instead of its result
# what a job-making route answers, by status
STARTED = {202: {"model": JobStarted, "description": "the job, queued"}, 200: TIMELINE}


@router.get("", response_model=list[JobSummary])
def list_jobs(request: Request) -> list[dict]:
    return [j.summary() for j in request.app.state.jobs.all()]


@router.get("/{job_id}", response_model=JobSummary, responses=responses(404))
def job_status(request: Request, job_id: str) -> dict:
    return find(request.app.state.jobs, job_id).summary()


@router.delete("/{job_id}", response_model=JobSummary, responses=responses(404))
def cancel_job(request: Request, job_id: str) -> dict:
    return cancel(request.app.state.jobs, job_id)


@router.get("/{job_id}/result", responses={200: TIMELINE} | responses(*FAILED))
def job_result(
    request: Request,
    job_id: str,
    format: Annotated[
        str,
        Query(
            description="timeline-json or an export format", json_schema_extra=one_of(list(FORMATS))
        ),
    ] = "timeline-json",
) -> Response:
    return answer(finished(find(request.app.state.jobs, job_id)), format)


@router.get("/{job_id}/rig", responses=responses(*FAILED))
def job_rig(request: Request, job_id: str) -> dict:
    job = finished(find(request.app.state.jobs, job_id))
    if "rig" not in job.result:
        raise ApiError(404, f"job {job_id} was made without a rig; send rig or shape_keys")
    return job.result["rig"]


@router.get(
    "/{job_id}/audio",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}, "description": "the speech, WAV"}}
    | responses(*FAILED),
)
def job_audio(request: Request, job_id: str) -> Response:
    job = finished(find(request.app.state.jobs, job_id))
    speech = job.result.get("speech")
    if speech is None:
        raise ApiError(404, f"job {job_id} made no audio; only /lipsync/text jobs do")
    return Response(wav_bytes(speech.audio, speech.sample_rate), media_type="audio/wav")


# --- shared by the routes that make jobs ------------------------------------------------------


def started(jobs: Jobs, kind: str, work, wait: bool) -> Response:
    """202 with the job, or (wait) the finished job's timeline or its error."""
    job = jobs.submit(kind, work)
    if not wait:
        links = {"status": f"/jobs/{job.id}", "result": f"/jobs/{job.id}/result"}
        return JSONResponse({"job": job.summary(), "links": links}, status_code=202)
    job.wait()
    return answer(finished(job), "timeline-json")


def find(jobs: Jobs, job_id: str) -> Job:
    try:
        return jobs.get(job_id)
    except KeyError:
        raise ApiError(404, f"no job {job_id!r}; GET /jobs lists the jobs kept") from None


def cancel(jobs: Jobs, job_id: str) -> dict:
    find(jobs, job_id)
    return jobs.cancel(job_id).summary()


def finished(job: Job) -> Job:
    if job.status in ("queued", "running"):
        raise ApiError(
            409, f"job {job.id} is {job.status} ({job.progress:.0%}); GET /jobs/{job.id} until done"
        )
    if job.status != "done":
        raise ApiError(STATUS.get(job.error_type, 500), job.error, job.error_type)
    return job


def answer(job: Job, fmt: str) -> Response:
    """A finished job's result: ranked lines, a transcript, or its timeline in `fmt`."""
    if "candidates" in job.result:  # lip reading: ranked sentences, no timeline
        return JSONResponse({"candidates": job.result["candidates"]})
    if "transcript" in job.result:  # /transcribe: the words, no timeline
        return JSONResponse(job.result["transcript"])
    if "sync" in job.result:  # /sync: the offset, no timeline
        return JSONResponse(job.result["sync"])
    if fmt not in FORMATS:
        raise ApiError(400, f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    body = export(job.result["timeline"], fmt)
    media = "application/json" if fmt.endswith("json") else "text/plain; charset=utf-8"
    return Response(body, media_type=media)

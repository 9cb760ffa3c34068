"""/osc: play a timeline's curves over OSC, or stream the server's microphone live; each runs
as a playback (its own pool, so it never waits behind lip-sync jobs)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from ...core.timeline import Timeline
from ...osc import live
from ...osc import stream as osc
from ..errors import ApiError, builtin, responses
from ..schemas import LiveRequest, OscRequest
from .jobs import cancel, find, finished

router = APIRouter(prefix="/osc", tags=["osc"])
PLAYING = {202: {"description": "the playback, started"}}


@router.post("/play", status_code=202, responses=PLAYING | responses(400, 404, 409, 429, 503))
def osc_play(request: Request, body: Annotated[OscRequest, Body()]) -> JSONResponse:
    timeline = osc_timeline(request, body)
    preset = osc.load_preset(builtin(body.preset, osc.preset_names(), "OSC preset"))
    host, port = osc.parse_target(body.to, preset.port)
    fps, start_at = osc.check_fps(body.fps), time.time() + body.start_in

    def work(progress):
        stats = osc.play(timeline, host, port, preset=preset, fps=fps, start_at=start_at,
                         loop=body.loop, names=body.names, progress=progress)  # fmt: skip
        return {"osc": stats}

    job = request.app.state.playbacks.submit("osc", work)
    links = {"status": f"/osc/play/{job.id}", "stop": f"/osc/play/{job.id}"}
    return JSONResponse(
        {"job": job.summary(), "start_at": start_at, "links": links}, status_code=202
    )


@router.get("/play/{job_id}", responses=responses(404))
def osc_status(request: Request, job_id: str) -> dict:
    job = find(request.app.state.playbacks, job_id)
    stats = (job.result or {}).get("osc")
    return job.summary() | {"stats": asdict(stats) if stats else None}


@router.delete("/play/{job_id}", responses=responses(404))
def osc_stop(request: Request, job_id: str) -> dict:
    return cancel(request.app.state.playbacks, job_id)


@router.get("/devices", responses=responses(503))
def input_devices() -> list[dict]:
    return live.input_devices()


@router.post("/live", status_code=202, responses=PLAYING | responses(400, 429, 503))
def live_start(request: Request, body: Annotated[LiveRequest, Body()]) -> JSONResponse:
    preset = builtin(body.preset, osc.preset_names(), "OSC preset")
    host, port = osc.parse_target(body.to, osc.load_preset(preset).port)
    fps = osc.check_fps(body.fps)
    microphone, stats = live.Microphone(body.device, body.seconds), live.LiveStats()

    def work(progress):
        live.stream(microphone, host, port, preset=preset, fps=fps, motion=body.motion,
                    progress=progress, stats=stats)  # fmt: skip
        return {"live": stats}

    job = request.app.state.playbacks.submit("live", work)
    job.result = {"live": stats}  # filled in as it streams
    links = {"status": f"/osc/live/{job.id}", "stop": f"/osc/live/{job.id}"}
    return JSONResponse(
        {"job": job.summary(), "device": microphone.name, "links": links}, status_code=202
    )


@router.get("/live/{job_id}", responses=responses(404))
def live_status(request: Request, job_id: str) -> dict:
    job = find(request.app.state.playbacks, job_id)
    stats = (job.result or {}).get("live")
    return job.summary() | {"stats": stats.summary() if stats else None}


@router.delete("/live/{job_id}", responses=responses(404))
def live_stop(request: Request, job_id: str) -> dict:
    return cancel(request.app.state.playbacks, job_id)


def osc_timeline(request: Request, body: OscRequest) -> Timeline:
    if (body.job_id is None) == (body.timeline is None):
        raise ApiError(400, "give job_id (a finished lip-sync job) or a timeline, one of them")
    if body.job_id is not None:
        result = finished(find(request.app.state.jobs, body.job_id)).result
        if "timeline" not in result:  # a transcript or ranked lines: nothing to play
            raise ApiError(400, f"job {body.job_id} made no timeline; give a lip-sync job's id")
        return result["timeline"]
    return Timeline.from_dict(body.timeline)

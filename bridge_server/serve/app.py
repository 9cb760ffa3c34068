"""The local inference bridge: an HTTP API (FastAPI) over the same calls the CLI makes.

Long work runs as jobs (`jobs.py`): a POST answers at once with the job (202), or with its
result when `wait` is true. Clients send file content, never server-side paths. Every error
is a JSON body {"error": ..., "type": ...} whose message names the problem and the fix.
"""

from __future__ import annotations

import hmac
import ipaddress
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Annotated, Literal

from fastapi import Body, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from .. import engines
from ..core.curves import CurveSettings
from ..core.errors import InputError, LipsyncError
from .jobs import Job, Jobs

LOOPBACK = "127.0.0.1"
PLAYBACKS = 4  # OSC playbacks at once (each a thread that mostly sleeps)
PLAYBACK_LIMIT_S = 4 * 3600.0  # a looping playback stops after this


@dataclass
class ServerSettings:
    token: str = ""  # required (Authorization: Bearer ...) when set
    max_upload_mb: float = 200.0
    workers: int = 1  # jobs that run at once; alignment itself uses every core
    max_queued: int = 8
    time_limit_s: float = 600.0
    review: object = None  # a review.Review: also serve its /review pages (lipsync review)
    lipreader: str = ""  # a trained lip-reading model (.onnx) that /lipread may use


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "InputError"):
        super().__init__(message)
        self.status, self.kind = status, kind


STATUS = {  # error class -> HTTP status
    "InputError": 400,
    "TimelineFormatError": 400,
    "OutputError": 500,
    "EngineUnavailable": 503,
    "Busy": 429,
    "Cancelled": 409,
    "InternalError": 500,
}


class Animation(BaseModel):
    """How the mouth moves, and for which shapes (the CLI's animation options)."""

    visemes: str | None = Field(None, description="viseme set (default oculus15, or the rig's)")
    rig: str | None = Field(None, description="a rig preset (GET /rigs): curves get its names")
    shape_keys: list[str] | None = Field(
        None, description="or the rig's own shape-key names, matched to visemes"
    )
    fps: float = Field(24.0, gt=0, le=240)
    intensity: float = Field(1.0, ge=0, le=2)
    smoothing: float = Field(0.5, ge=0, le=1)
    lead: float = Field(0.0, ge=-0.5, le=0.5)
    holds: bool = False
    max_error: float = Field(0.01, ge=0, le=0.2)

    def settings(self) -> CurveSettings:
        return CurveSettings(self.intensity, self.smoothing, self.lead, self.holds, self.max_error)

    def mapping(self):
        """The rig mapping asked for, or None; refused at once when it cannot be made."""
        if not (self.rig or self.shape_keys is not None):
            return None
        from ..core.rigs import resolve

        return resolve(self.rig, self.shape_keys, self.visemes)

    def viseme_set(self, mapping) -> str:
        return mapping.viseme_set if mapping else self.visemes or "oculus15"

    def finish(self, timeline, mapping) -> dict:
        """The job's result: the timeline, its curves renamed after the rig when one was given."""
        if mapping is None:
            return {"timeline": timeline}
        from ..core.rigs import apply

        return {"timeline": apply(timeline, mapping), "rig": mapping.to_dict()}


class TextRequest(Animation):
    text: str = Field(..., description="the line to speak (up to 20,000 characters)")
    engine: Literal["espeak", "piper"] = "espeak"
    voice: str = ""
    lang: str = ""
    rate_wpm: int | None = Field(None, ge=80, le=450)
    wait: bool = False


class OscTarget(BaseModel):
    to: str = Field("127.0.0.1:9000", description="the receiver, HOST:PORT")
    preset: str = Field("generic", description="generic, vrchat, vmc or arkit")
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


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.jobs = Jobs(settings.workers, settings.max_queued, settings.time_limit_s)
        app.state.playbacks = Jobs(PLAYBACKS, PLAYBACKS, PLAYBACK_LIMIT_S)
        yield
        app.state.jobs.shutdown()  # running jobs stop at their next step; nothing half-written
        app.state.playbacks.shutdown()  # players send their rest frame

    app = FastAPI(
        title="lipsync bridge",
        version=version("lipsync-bridge"),
        description=__doc__,
        lifespan=lifespan,
    )
    # each lifespan (a server run, a test client) gets its own; these serve callers that
    # skip the lifespan
    app.state.jobs = Jobs(settings.workers, settings.max_queued, settings.time_limit_s)
    app.state.playbacks = Jobs(PLAYBACKS, PLAYBACKS, PLAYBACK_LIMIT_S)
    app.state.lipreader = _lipreader(settings.lipreader)  # loaded once; a bad file stops start-up
    _errors(app)
    _guards(app, settings)
    if settings.review is not None:  # the listening-test page and its ratings
        from .review import router

        app.include_router(router(settings.review))

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": app.version}

    @app.get("/engines")
    def list_engines() -> list[dict]:
        rows = [engines.status(info) for info in engines.ENGINES]
        return [
            {
                "name": s.engine.name,
                "job": s.engine.job,
                "available": s.available,
                "detail": s.detail,
            }
            for s in rows
        ]

    @app.get("/viseme-sets")
    def viseme_sets() -> list[str]:
        from ..core.visemes import available_sets

        return available_sets()

    @app.get("/rigs")
    def list_rigs() -> list[dict]:
        from ..core.rigs import load_preset, presets

        return [load_preset(name).to_dict() for name in presets()]

    @app.post("/rigs/match")
    def match_rig(
        shape_keys: Annotated[list[str], Body(embed=True)],
        visemes: Annotated[str | None, Body(embed=True)] = None,
    ) -> dict:
        from ..core.rigs import match

        return match(shape_keys, visemes).to_dict()

    @app.post("/lipsync/text", status_code=202)
    def lipsync_text(request: Annotated[TextRequest, Body()]) -> Response:
        mapping = request.mapping()
        _check_now(request.viseme_set(mapping), request.text)

        def work(progress):
            from ..pipeline import say

            speech, timeline = say(
                request.text,
                engine=request.engine,
                voice=request.voice,
                lang=request.lang,
                rate_wpm=request.rate_wpm,
                viseme_set=request.viseme_set(mapping),
                fps=request.fps,
                settings=request.settings(),
                progress=progress,
            )
            return request.finish(timeline, mapping) | {"speech": speech}

        return _started(app.state.jobs, "text", work, request.wait)

    @app.post("/lipsync/audio", status_code=202)
    async def lipsync_audio(
        file: Annotated[UploadFile, File(description="audio, or a video with a sound track")],
        text: Annotated[str | None, Form(description="the script (optional)")] = None,
        engine: Annotated[Literal["auto", "whisper", "allosaurus", "phoneloop"], Form()] = "auto",
        model: Annotated[str, Form()] = "auto",
        lang: Annotated[str, Form()] = "",
        visemes: Annotated[str | None, Form()] = None,
        rig: Annotated[str | None, Form(description="a rig preset (GET /rigs)")] = None,
        shape_keys: Annotated[
            str | None, Form(description="the rig's shape-key names, comma-separated")
        ] = None,
        fps: Annotated[float, Form(gt=0, le=240)] = 24.0,
        intensity: Annotated[float, Form(ge=0, le=2)] = 1.0,
        smoothing: Annotated[float, Form(ge=0, le=1)] = 0.5,
        lead: Annotated[float, Form(ge=-0.5, le=0.5)] = 0.0,
        holds: Annotated[bool, Form()] = False,
        max_error: Annotated[float, Form(ge=0, le=0.2)] = 0.01,
        video_weight: Annotated[
            float,
            Form(ge=0, le=1, description="/lipsync/video: how much the face shapes the mouth"),
        ] = 0.5,
        face_model: Annotated[Literal["auto", "landmarker", "facemesh"], Form()] = "auto",
        wait: Annotated[bool, Form()] = False,
        request: Request = None,
    ) -> Response:
        data = await file.read()
        name = file.filename or "uploaded audio"
        if not data:
            raise ApiError(400, f"{name} is empty (0 bytes); send a file with sound")
        animation = Animation(
            visemes=visemes,
            rig=rig,
            shape_keys=[k.strip() for k in shape_keys.split(",")] if shape_keys else None,
            fps=fps,
            intensity=intensity,
            smoothing=smoothing,
            lead=lead,
            holds=holds,
            max_error=max_error,
        )
        mapping = animation.mapping()
        _check_now(animation.viseme_set(mapping))

        video = request is not None and request.url.path.endswith("/video")

        def work(progress):
            from ..media.audio import load_audio
            from ..pipeline import bake, track

            options = dict(
                text=text if text and text.strip() else None,
                engine=engine,
                model=model,
                lang=lang,
                viseme_set=animation.viseme_set(mapping),
                fps=animation.fps,
                settings=animation.settings(),
                progress=progress,
            )
            if video:  # the sound, and the face in the picture
                timeline = track(data, name=name, video_weight=video_weight,
                                 face_model=face_model, **options)  # fmt: skip
            else:
                timeline = bake(load_audio(data, name=name), **options)
            return animation.finish(timeline, mapping)

        return _started(app.state.jobs, "video" if video else "audio", work, wait)

    @app.post("/lipread", status_code=202)
    async def lipread(
        file: Annotated[UploadFile, File(description="a video of the speaker (sound unused)")],
        choices: Annotated[
            str | None, Form(description="candidate lines, one per line: which is said?")
        ] = None,
        grammar: Annotated[
            str | None, Form(description="a built-in sentence grammar, e.g. grid")
        ] = None,
        best: Annotated[int, Form(ge=1, le=100)] = 5,
        model: Annotated[
            bool, Form(description="rank the choices with the bridge's trained lip reader")
        ] = False,
        wait: Annotated[bool, Form()] = False,
    ) -> Response:
        from ..lipread.reader import lipread

        data, name = await _upload(file)
        lines = [c for c in choices.splitlines() if c.strip()] if choices is not None else None
        slots = _grammar(lines, grammar)
        reader = app.state.lipreader if model else None
        if model and reader is None:
            raise ApiError(400, "this bridge has no lip-reading model; start it with "
                           "'lipsync serve --lipreader FILE.onnx', or leave model out")  # fmt: skip

        def work(progress):
            found = lipread(data, lines, slots, best=best, model=reader, name=name,
                            progress=progress)  # fmt: skip
            return {"candidates": [c.to_dict() for c in found]}

        return _started(app.state.jobs, "lipread", work, wait)

    @app.post("/lipread/script", status_code=202)
    async def lipread_script(
        file: Annotated[UploadFile, File(description="a video of the speaker (sound unused)")],
        text: Annotated[str, Form(description="the script the speaker says")],
        visemes: Annotated[str | None, Form()] = None,
        rig: Annotated[str | None, Form(description="a rig preset (GET /rigs)")] = None,
        fps: Annotated[float, Form(gt=0, le=240)] = 24.0,
        intensity: Annotated[float, Form(ge=0, le=2)] = 1.0,
        smoothing: Annotated[float, Form(ge=0, le=1)] = 0.5,
        holds: Annotated[bool, Form()] = False,
        wait: Annotated[bool, Form()] = False,
    ) -> Response:
        from ..lipread.reader import time_script_to_video

        data, name = await _upload(file)
        animation = Animation(visemes=visemes, rig=rig, fps=fps, intensity=intensity,
                              smoothing=smoothing, holds=holds)  # fmt: skip
        mapping = animation.mapping()
        _check_now(animation.viseme_set(mapping), text)

        def work(progress):
            timeline = time_script_to_video(
                data, text, viseme_set=animation.viseme_set(mapping), fps=animation.fps,
                curve_settings=animation.settings(), name=name, progress=progress,
            )  # fmt: skip
            return animation.finish(timeline, mapping)

        return _started(app.state.jobs, "lipread", work, wait)

    @app.post("/osc/play", status_code=202)
    def osc_play(request: Annotated[OscRequest, Body()]) -> JSONResponse:
        import time

        from ..osc import stream as osc

        timeline = _osc_timeline(app.state.jobs, request)
        preset = osc.load_preset(_builtin(request.preset, osc.preset_names()))
        host, port = osc.parse_target(request.to, preset.port)
        fps, start_at = osc.check_fps(request.fps), time.time() + request.start_in

        def work(progress):
            stats = osc.play(
                timeline,
                host,
                port,
                preset=preset,
                fps=fps,
                start_at=start_at,
                loop=request.loop,
                names=request.names,
                progress=progress,
            )
            return {"osc": stats}

        job = app.state.playbacks.submit("osc", work)
        links = {"status": f"/osc/play/{job.id}", "stop": f"/osc/play/{job.id}"}
        return JSONResponse(
            {"job": job.summary(), "start_at": start_at, "links": links}, status_code=202
        )

    @app.get("/osc/play/{job_id}")
    def osc_status(job_id: str) -> dict:
        job = _job(app.state.playbacks, job_id)
        stats = (job.result or {}).get("osc")
        return job.summary() | {"stats": asdict(stats) if stats else None}

    @app.delete("/osc/play/{job_id}")
    def osc_stop(job_id: str) -> dict:
        _job(app.state.playbacks, job_id)
        return app.state.playbacks.cancel(job_id).summary()

    @app.get("/osc/devices")
    def input_devices() -> list[dict]:
        from ..osc.live import input_devices

        return input_devices()

    @app.post("/osc/live", status_code=202)
    def live_start(request: Annotated[LiveRequest, Body()]) -> JSONResponse:
        from ..osc import live
        from ..osc import stream as osc

        preset = _builtin(request.preset, osc.preset_names())
        host, port = osc.parse_target(request.to, osc.load_preset(preset).port)
        fps = osc.check_fps(request.fps)
        microphone, stats = live.Microphone(request.device, request.seconds), live.LiveStats()

        def work(progress):
            live.stream(
                microphone, host, port, preset=preset, fps=fps, progress=progress, stats=stats
            )
            return {"live": stats}

        job = app.state.playbacks.submit("live", work)
        job.result = {"live": stats}  # filled in as it streams
        links = {"status": f"/osc/live/{job.id}", "stop": f"/osc/live/{job.id}"}
        return JSONResponse(
            {"job": job.summary(), "device": microphone.name, "links": links}, status_code=202
        )

    @app.get("/osc/live/{job_id}")
    def live_status(job_id: str) -> dict:
        job = _job(app.state.playbacks, job_id)
        stats = (job.result or {}).get("live")
        return job.summary() | {"stats": stats.summary() if stats else None}

    @app.delete("/osc/live/{job_id}")
    def live_stop(job_id: str) -> dict:
        return osc_stop(job_id)

    app.add_api_route(
        "/lipsync/video",
        lipsync_audio,
        methods=["POST"],
        status_code=202,
        summary="Lip sync from a reference video: its sound and the speaker's face",
        description="As /lipsync/audio, plus the face tracked in the picture: the timeline gets "
        "lip landmarks and mouth controls, and the curves follow the face by video_weight.",
    )

    @app.get("/jobs")
    def list_jobs() -> list[dict]:
        return [j.summary() for j in app.state.jobs.all()]

    @app.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        return _job(app.state.jobs, job_id).summary()

    @app.delete("/jobs/{job_id}")
    def cancel_job(job_id: str) -> dict:
        _job(app.state.jobs, job_id)
        return app.state.jobs.cancel(job_id).summary()

    @app.get("/jobs/{job_id}/result")
    def job_result(
        job_id: str,
        format: Annotated[str, Query(description="timeline-json or an export format")] = (
            "timeline-json"
        ),
    ) -> Response:
        return _result(_finished(_job(app.state.jobs, job_id)), format)

    @app.get("/jobs/{job_id}/rig")
    def job_rig(job_id: str) -> dict:
        job = _finished(_job(app.state.jobs, job_id))
        if "rig" not in job.result:
            raise ApiError(404, f"job {job_id} was made without a rig; send rig or shape_keys")
        return job.result["rig"]

    @app.get("/jobs/{job_id}/audio")
    def job_audio(job_id: str) -> Response:
        job = _finished(_job(app.state.jobs, job_id))
        speech = job.result.get("speech")
        if speech is None:
            raise ApiError(404, f"job {job_id} made no audio; only /lipsync/text jobs do")
        from ..media.audio import wav_bytes

        return Response(wav_bytes(speech.audio, speech.sample_rate), media_type="audio/wav")

    return app


# --- jobs -----------------------------------------------------------------------------------


def _started(jobs: Jobs, kind: str, work, wait: bool) -> Response:
    job = jobs.submit(kind, work)
    if not wait:
        links = {"status": f"/jobs/{job.id}", "result": f"/jobs/{job.id}/result"}
        return JSONResponse({"job": job.summary(), "links": links}, status_code=202)
    job.wait()
    return _result(_finished(job), "timeline-json")


def _osc_timeline(jobs: Jobs, request: OscRequest):
    from ..core.timeline import Timeline

    if (request.job_id is None) == (request.timeline is None):
        raise ApiError(400, "give job_id (a finished lip-sync job) or a timeline, one of them")
    if request.job_id is not None:
        return _finished(_job(jobs, request.job_id)).result["timeline"]
    return Timeline.from_dict(request.timeline)


def _builtin(name: str, names: list[str], what: str = "OSC preset") -> str:
    """Presets by name only: a client never names a file on the server."""
    if name not in names:
        raise ApiError(400, f"unknown {what} {name!r}; choose one of: {', '.join(names)}")
    return name


def _check_now(visemes: str, text: str | None = None) -> None:
    """What can be refused at once is, before a job is made."""
    from ..core.text import check_text
    from ..core.visemes import load_set

    load_set(visemes)
    if text is not None:
        check_text(text)


def _job(jobs: Jobs, job_id: str) -> Job:
    try:
        return jobs.get(job_id)
    except KeyError:
        raise ApiError(404, f"no job {job_id!r}; GET /jobs lists the jobs kept") from None


def _finished(job: Job) -> Job:
    if job.status in ("queued", "running"):
        raise ApiError(
            409, f"job {job.id} is {job.status} ({job.progress:.0%}); GET /jobs/{job.id} until done"
        )
    if job.status != "done":
        raise ApiError(STATUS.get(job.error_type, 500), job.error, job.error_type)
    return job


def _lipreader(path: str):
    if not path:
        return None
    from ..lipread.model import LipReaderModel

    return LipReaderModel.load(path)


def _grammar(lines: list[str] | None, grammar: str | None):
    """A built-in grammar's slots (never a path on the server), or None when lines are given."""
    from ..lipread.reader import GRAMMARS, load_grammar

    if (lines is None) == (grammar is None):
        raise ApiError(400, "give choices (candidate lines, one per line) or grammar, one of them")
    if lines is not None:
        if not lines:
            raise ApiError(400, "choices holds no line; send one candidate sentence per line")
        return None
    return load_grammar(
        _builtin(grammar, sorted(p.stem for p in GRAMMARS.glob("*.json")), "grammar")
    )


async def _upload(file: UploadFile) -> tuple[bytes, str]:
    data, name = await file.read(), file.filename or "uploaded video"
    if not data:
        raise ApiError(400, f"{name} is empty (0 bytes); send a video of the speaker")
    return data, name


def _result(job: Job, fmt: str) -> Response:
    from ..formats.exporters import FORMATS, export

    if "candidates" in job.result:  # lip reading: ranked sentences, no timeline
        return JSONResponse({"candidates": job.result["candidates"]})

    timeline = job.result["timeline"]
    if fmt not in FORMATS:
        raise ApiError(400, f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    body = export(timeline, fmt)
    media = "application/json" if fmt.endswith("json") else "text/plain; charset=utf-8"
    return Response(body, media_type=media)


# --- errors and guards --------------------------------------------------------------------------


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind}, status_code=status)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def api_error(request: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, str(e), e.kind)

    @app.exception_handler(LipsyncError)
    def lipsync_error(request: Request, e: LipsyncError) -> JSONResponse:
        kind = type(e).__name__
        return _error(STATUS.get(kind, 400), str(e), kind)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'] if p != 'body') or 'body'}: {err['msg']}"
            for err in e.errors()
        ]
        return _error(422, "invalid request: " + "; ".join(problems), "InputError")

    @app.exception_handler(HTTPException)
    def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail), "HTTPError")

    @app.exception_handler(Exception)
    def internal(request: Request, e: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(e).__name__}: {e}", "InternalError")


def _guards(app: FastAPI, settings: ServerSettings) -> None:
    limit = int(settings.max_upload_mb * 1024 * 1024)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if settings.token and request.url.path != "/health":
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), settings.token.encode()):
                return _error(
                    401, "missing or wrong token; send 'Authorization: Bearer <token>'", "Auth"
                )
        size = request.headers.get("content-length")
        if size is None and request.method in ("POST", "PUT", "PATCH"):
            return _error(411, "send the request with a Content-Length header", "InputError")
        if size is not None and (not size.isdigit() or int(size) > limit):
            return _error(
                413,
                f"the upload is over the server's limit of {settings.max_upload_mb:g} MB; send "
                "a shorter file, or start the server with a larger --max-upload-mb",
                "InputError",
            )
        return await call_next(request)


def check_bind(host: str, token: str) -> None:
    """Loopback needs no token; any other address does (anyone on the network could call)."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise InputError(
            f"serving on {host} lets other machines call the bridge; give --token SECRET "
            "(clients send 'Authorization: Bearer SECRET'), or serve on 127.0.0.1"
        )


def serve(host: str = LOOPBACK, port: int = 8765, settings: ServerSettings | None = None) -> None:
    """Run the bridge until Ctrl+C; running jobs are cancelled on the way out."""
    import uvicorn

    settings = settings or ServerSettings()
    check_bind(host, settings.token)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def serve_in_thread(settings: ServerSettings | None = None, host: str = LOOPBACK):
    """A real server on a free port, in a background thread (tests, benchmarks, the add-on's
    own bridge): returns (base url, stop function)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://{host}:{port}", stop

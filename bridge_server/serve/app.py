"""The local inference bridge: an HTTP API (FastAPI) over the same calls the CLI makes.

Long work runs as jobs (`jobs.py`): a POST answers at once with the job (202), or with its
result when `wait` is true. Clients send file content, never server-side paths. Every error
is a JSON body {"error": ..., "type": ...} whose message names the problem and the fix.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from contextlib import asynccontextmanager
from importlib.metadata import version

import uvicorn
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from ..core.errors import EngineUnavailable, InputError
from ..lipread.model import LipReaderModel
from . import review
from .errors import add_handlers
from .guard import add_guard, declare
from .jobs import Jobs
from .routes import info, jobs, lipread, lipsync, osc, sync, transcribe
from .settings import LOOPBACK, PLAYBACK_LIMIT_S, PLAYBACKS, ServerSettings

__all__ = ["LOOPBACK", "ServerSettings", "check_bind", "create_app", "serve", "serve_in_thread"]
ROUTERS = (info.router, lipsync.router, transcribe.router, lipread.router, sync.router, osc.router,
           jobs.router)  # fmt: skip

log = logging.getLogger(__name__)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        start_jobs(app, settings)
        yield
        app.state.jobs.shutdown()  # running jobs stop at their next step; nothing half-written
        app.state.playbacks.shutdown()  # players send their rest frame

    # /docs and /redoc with Swagger UI and ReDoc served from the package: they work offline
    app = FastAPIOffline(
        title="lipsync bridge", version=version("lipsync-bridge"), description=__doc__,
        lifespan=lifespan,
    )  # fmt: skip
    start_jobs(app, settings)  # each lifespan gets its own; these serve callers that skip it
    app.state.lipreader = _lipreader(settings.lipreader)
    add_handlers(app)
    add_guard(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    if settings.review is not None:  # the listening-test page and its ratings
        app.include_router(review.router(settings.review))
    declare(app, settings)
    return app


def _lipreader(path: str) -> LipReaderModel | None:
    """The lip reader /lipread uses: the one asked for (it must load), else the project's own;
    without it the bridge still serves, and /lipread says how to get one."""
    if path:
        return LipReaderModel.load(path)
    try:
        return LipReaderModel.shipped()
    except EngineUnavailable as e:
        log.warning("no lip reader for /lipread (template matching only): %s", e)
        return None


def start_jobs(app: FastAPI, settings: ServerSettings) -> None:
    app.state.jobs = Jobs(settings.workers, settings.max_queued, settings.time_limit_s)
    app.state.playbacks = Jobs(PLAYBACKS, PLAYBACKS, PLAYBACK_LIMIT_S)


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
    settings = settings or ServerSettings()
    check_bind(host, settings.token)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def serve_in_thread(settings: ServerSettings | None = None, host: str = LOOPBACK):
    """A real server on a free port, in a background thread (tests, benchmarks, the add-on's
    own bridge): returns (base url, stop function)."""
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

"""`lipsync serve` and `review`: the local HTTP bridge, and its listening-test page."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import InputError
from ..serve.settings import LOOPBACK, ServerSettings
from .options import EXIT_CODES, command

SERVE_EXAMPLES = """examples:
  lipsync serve
  lipsync serve --port 9000 --workers 2
  lipsync serve --host 0.0.0.0 --token s3cret"""


def add_commands(sub) -> None:
    _add_serve(sub)
    _add_review(sub)


def _add_serve(sub) -> None:
    p = command(
        sub,
        "serve",
        "run the local bridge: the HTTP API for the Blender add-on, scripts and game engines",
        "Serve the HTTP API (OpenAPI page at /docs) until Ctrl+C. Loopback by default; any\n"
        "other address needs --token, which clients send as 'Authorization: Bearer TOKEN'.",
        SERVE_EXAMPLES,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", default="", help="require this bearer token on every request")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="upload limit (200)")
    p.add_argument("--workers", type=int, default=1, help="jobs that run at once (1)")
    p.add_argument("--max-queued", type=int, default=8, help="jobs that may wait (8)")
    p.add_argument("--time-limit", type=float, default=600.0, help="seconds per job (600)")
    p.add_argument(
        "--lipreader", default="", metavar="ONNX", help="a trained lip reader for /lipread"
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(a: argparse.Namespace) -> int:
    from ..serve.app import serve  # fastapi + uvicorn take ~0.8 s to import: only when serving

    _check_port(a.port)
    settings = ServerSettings(
        a.token, a.max_upload_mb, a.workers, a.max_queued, a.time_limit, lipreader=a.lipreader
    )
    print(
        f"lipsync bridge on http://{a.host}:{a.port} (API page: /docs); Ctrl+C stops it",
        file=sys.stderr,
    )
    serve(a.host, a.port, settings)
    return 0


def _add_review(sub) -> None:
    p = sub.add_parser(
        "review",
        help="serve a listening-test page: rate lines, compare A/B",
        description="Serve a listening-test page on 127.0.0.1: each line of LINES (a sound "
        "beside its timelines take.json, take.<variant>.json) plays with a 2D mouth; raters "
        "score sync and naturalness 1-5 or compare two variants blind (A/B). Ratings go to an "
        "SQLite file; GET /review/ratings.csv exports them.",
        epilog=EXIT_CODES,
    )
    p.add_argument("lines", help="the folder of lines to review")
    p.add_argument("--port", type=int, default=8770, help="port (default 8770)")
    p.add_argument("--db", help="the ratings file (default LINES/ratings.sqlite)")
    p.set_defaults(func=cmd_review)


def cmd_review(a: argparse.Namespace) -> int:
    from ..serve.app import serve  # fastapi + uvicorn: as for `serve`
    from ..serve.review import Review  # pydantic (~0.3 s): only when reviewing

    _check_port(a.port)
    review = Review.open(a.lines, a.db)
    print(
        f"reviewing {len(review.lines.by_id)} lines on http://{LOOPBACK}:{a.port}/review/ "
        f"(ratings in {review.store.path}); Ctrl+C stops it",
        file=sys.stderr,
    )
    for problem in review.lines.skipped:
        print(f"  skipped {problem}", file=sys.stderr)
    serve(LOOPBACK, a.port, ServerSettings(review=review))
    return 0


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be 1..65535, got {port}")

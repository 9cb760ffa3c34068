"""How one bridge runs: its limits, its token and what else it serves."""

from __future__ import annotations

from dataclasses import dataclass

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
    lipreader: str = ""  # a trained lip reader (.onnx) for /lipread; "" = models/lipreader.onnx

"""`lipsync track` and `sync`: a reference video's face and sound."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import InputError
from ..formats.plot import sync_png
from ..pipeline import sync, track_video
from .files import emit, outputs_checked, script, write_outputs
from .options import EXIT_CODES, command, recording, recording_options
from .progress import ProgressBar

TRACK_EXAMPLES = """examples:
  lipsync track take.mp4 --timeline take.json --plot take.png      # landmarks, controls, visemes
  lipsync track take.mp4 --text "the script" --video-weight 0.8 --timeline take.json
  lipsync track take.mov --visemes arkit --timeline take.json      # ARKit blendshapes from the face
  lipsync sync take.mp4                                            # sound early/late, in ms"""


def add_commands(sub) -> None:
    _add_track(sub)
    _add_sync(sub)


# --- track ---------------------------------------------------------------------------------


def _add_track(sub) -> None:
    p = command(
        sub,
        "track",
        "animate a reference video: its sound for timing, the face for the mouth",
        "Track the speaker's face in a video (478 landmarks per frame, head motion removed), "
        "measure mouth controls, and animate from the sound's phonemes and the face together.",
        TRACK_EXAMPLES,
    )
    p.add_argument("video", help="a video of the speaker (MP4, MOV, MKV, MPG, WEBM...)")
    recording_options(p)
    g = p.add_argument_group("video")
    g.add_argument(
        "--video-weight",
        type=float,
        default=0.5,
        metavar="W",
        help="how much the mouth's size and shape follow the face, 0..1 (default 0.5; timing "
        "and closures always come from the sound)",
    )
    g.add_argument(
        "--face-model",
        default="auto",
        choices=["auto", "landmarker", "facemesh"],
        help="landmarker: 478 points + ARKit blendshapes (needs face_landmarker.task, which "
        "setup.sh installs); facemesh: 478 points (default: landmarker where installed)",
    )
    g.add_argument(
        "--neutral",
        metavar="START:END",
        help="seconds where the actor rests with the mouth closed, to calibrate against "
        "(default: found from the quietest frames)",
    )
    p.set_defaults(func=cmd_track)


def cmd_track(a: argparse.Namespace) -> int:
    video = Path(a.video)
    if not 0.0 <= a.video_weight <= 1.0:
        raise InputError(f"--video-weight {a.video_weight} is outside 0..1; e.g. 0.5.")
    text = script(a, video)
    fmt = outputs_checked(a)
    made = track_video(video, video_weight=a.video_weight, face_model=a.face_model,
                       neutral=_span(a.neutral), fix_sync=a.fix_sync, **recording(a, text))  # fmt: skip
    timeline = made.timeline
    write_outputs(a, timeline, fmt, video, made.sound)  # the sound decoded once, for the plot
    if not a.quiet:
        v = timeline.source["video"]
        offset = f", sound {v['av_offset_ms']:+.0f} ms" if "av_offset_ms" in v else ""
        print(
            f"face in {v['face_found']:.0%} of {v['frames']} frames ({v['model']}){offset}",
            file=sys.stderr,
        )
    return 0


def _span(text: str | None) -> tuple[float, float] | None:
    """--neutral START:END in seconds."""
    if not text:
        return None
    try:
        start, end = (float(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"--neutral {text!r} is not START:END in seconds; e.g. 0:0.5.") from None
    if not 0 <= start < end:
        raise InputError(f"--neutral {text!r}: START must be before END; e.g. 0:0.5.")
    return start, end


# --- sync ----------------------------------------------------------------------------------


def _add_sync(sub) -> None:
    p = sub.add_parser(
        "sync",
        help="measure how late a video's sound is against the speaker's lips",
        description="Measure how far a video's sound is ahead of or behind the speaker's lips "
        "with the learned sync model (models/sync.onnx: 200 ms of lips against 200 ms of "
        "sound at every offset within ±1 s), for the whole take and per segment of a long "
        "one, so drift shows.",
        epilog=EXIT_CODES,
    )
    p.add_argument("video")
    p.add_argument("--plot", metavar="PNG", help="draw the score against the offset")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_sync)


def cmd_sync(a: argparse.Namespace) -> int:
    found = sync(Path(a.video), progress=ProgressBar(not a.quiet))
    if a.plot:
        emit({a.plot: sync_png(found.curve, found.offset_ms, Path(a.video).name)})
    if a.json:
        print(json.dumps({"offset_ms": round(found.offset_ms, 1),
                          "confidence": round(found.confidence, 2), "reason": found.reason,
                          "segments": found.segments,
                          "container_delay_ms": found.container_delay_ms}))  # fmt: skip
        return 0
    where = "late" if found.offset_ms > 0 else "early"
    sure = f"unsure: {found.reason}" if found.reason else "sure"
    print(f"{found.offset_ms:+.0f} ms: the sound is {abs(found.offset_ms):.0f} ms {where} "
          f"against the picture (confidence {found.confidence:.1f}, {sure})")  # fmt: skip
    if found.container_delay_ms:
        print(f"  (of which the file's container delays the sound {found.container_delay_ms:+.0f} "
              "ms: players that ignore that, like Blender's sound strips, see the rest)")  # fmt: skip
    for seg in found.segments:
        print(f"  {seg['start']:7.2f}-{seg['end']:7.2f} s: {seg['offset_ms']:+.0f} ms "
              f"(confidence {seg['confidence']:.1f})")  # fmt: skip
    return 0

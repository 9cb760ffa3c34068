"""`lipsync osc`: a timeline's curves, or the mouth heard live, streamed over OSC in real time."""

from __future__ import annotations

import argparse
import sys
import time

from ..core.curves import MOTIONS
from ..core.errors import InputError
from ..core.timeline import Timeline
from ..osc import live
from ..osc import stream as osc
from .options import EXIT_CODES
from .progress import ProgressBar

DESCRIPTION = """\
Stream a timeline's mouth curves over OSC (UDP) in real time: one bundle per frame, time-tagged
with when it should show, then a frame that sets every channel to 0 (also on Ctrl-C).
Receivers: VRChat, VMC apps (VSeeFace, VNyan, Warudo), TouchDesigner, Unity/Unreal OSC plug-ins."""

EXAMPLES = """examples:
  lipsync osc line.json                                  # /lipsync/<channel> to 127.0.0.1:9000
  lipsync osc line.json --preset vrchat                  # VRChat on this PC
  lipsync osc line.json --preset vmc --to 192.168.1.20   # a VMC app on another machine
  lipsync osc line.json --preset vrchat --name PP=MouthClosed --fps 30 --loop"""


def add_commands(sub) -> None:
    presets = "\n".join(f"  {n:<8} {osc.load_preset(n).title}" for n in osc.preset_names())
    p = sub.add_parser(
        "osc",
        help="play a timeline's curves over OSC in real time",
        description=DESCRIPTION,
        epilog=f"{EXIT_CODES}\n\npresets:\n{presets}\n\n{EXAMPLES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "timeline", nargs="?", help="timeline JSON from 'lipsync say --timeline' ('-' for stdin)"
    )
    _live_options(p)
    _stream_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=cmd_osc)


def _live_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--live",
        nargs="?",
        const="",
        metavar="AUDIO",
        help="instead of a timeline: send the mouth as it is heard, from the microphone, or from "
        "this audio file played as a live stream",
    )
    p.add_argument(
        "--motion",
        choices=MOTIONS,
        default="learned",
        help="with --live: learned (the live motion model hears the sound, any language, about "
        "0.05 s behind) or rules (pocketsphinx's English phone loop, about 0.1 s behind)",
    )
    p.add_argument(
        "--device",
        metavar="NAME|NUMBER",
        help="with --live: the input device (default: the system's; see --list-devices)",
    )
    p.add_argument(
        "--seconds", type=float, metavar="S", help="with --live: stop after this long (Ctrl-C too)"
    )
    p.add_argument("--list-devices", action="store_true", help="list input devices and exit")


def _stream_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--to",
        metavar="HOST:PORT",
        help="where to send (default 127.0.0.1 and the preset's port: 9000, vmc 39539)",
    )
    p.add_argument(
        "--preset",
        default="generic",
        metavar="NAME",
        help=f"address layout: {', '.join(osc.preset_names())} or a preset .json (default generic)",
    )
    p.add_argument("--fps", type=float, default=60.0, help="frames per second, 1..240 (default 60)")
    p.add_argument(
        "--start-in",
        type=float,
        metavar="SECONDS",
        help="start this long after the command starts, e.g. to cue audio at the same time "
        f"(default: {osc.LEAD:g} s after the frames are ready)",
    )
    p.add_argument("--loop", action="store_true", help="repeat until Ctrl-C")
    p.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="CHANNEL=NAME",
        help="send a channel under another name, e.g. --name PP=MouthClosed (repeatable)",
    )


def cmd_osc(a: argparse.Namespace) -> int:
    preset = osc.load_preset(a.preset)
    host, port = osc.parse_target(a.to, preset.port) if a.to else ("127.0.0.1", preset.port)
    if a.list_devices:
        return _list_devices()
    if (a.timeline is None) == (a.live is None):
        raise InputError(
            "give a timeline JSON, or --live to send the microphone (--live AUDIO: a recording) "
            "as heard."
        )
    if a.live is not None:
        return _stream_live(a, host, port)
    return _play(a, preset, host, port)


def _list_devices() -> int:
    devices = live.input_devices()
    for d in devices:
        print(f"{d['index']}: {d['name']} ({d['channels']} channels, {d['rate']:g} Hz)")
    if not devices:
        print("no input devices: PortAudio sees no microphone; connect one.", file=sys.stderr)
    return 0


def _stream_live(a: argparse.Namespace, host: str, port: int) -> int:
    source = a.live or live.Microphone(a.device, a.seconds)
    if not a.quiet and not a.live:
        print(f"listening to {source.name}; Ctrl-C stops", file=sys.stderr)
    stats = live.stream(source, host, port, preset=a.preset, fps=osc.check_fps(a.fps),
                        motion=a.motion)  # fmt: skip
    if not a.quiet:
        print(
            f"streamed {stats.seconds:.1f} s live to {host}:{port}: {stats.frames_sent} "
            f"frames, sound-to-packet latency p50 {stats.latency(50):.0f} ms, "
            f"p95 {stats.latency(95):.0f} ms",
            file=sys.stderr,
        )
    return 0


def _play(a: argparse.Namespace, preset: osc.Preset, host: str, port: int) -> int:
    names = osc.parse_names(a.name)
    fps = osc.check_fps(a.fps)
    start_at = None if a.start_in is None else time.time() + a.start_in
    if a.start_in is not None and not 0 <= a.start_in <= 3600:
        raise InputError(f"--start-in {a.start_in} is outside 0..3600 seconds; e.g. 0.5.")
    if a.timeline == "-":
        timeline = Timeline.from_json(sys.stdin.read(), "standard input")
    else:
        timeline = Timeline.load(a.timeline)
    if not a.quiet:
        print(
            f"streaming {timeline.duration:.2f} s to {host}:{port} as {preset.name} at "
            f"{fps:g} fps" + (", looping (Ctrl-C stops)" if a.loop else ""),
            file=sys.stderr,
        )
    stats = osc.play(timeline, host, port, preset=preset, fps=fps, start_at=start_at,
                     loop=a.loop, names=names,
                     progress=ProgressBar(not a.quiet and not a.loop))  # fmt: skip
    if not a.quiet:
        print(
            f"sent {stats.frames_sent} frames; {stats.late_frames} late "
            f"(max {stats.max_late_ms:.1f} ms), {stats.skipped_frames} skipped",
            file=sys.stderr,
        )
    return 0

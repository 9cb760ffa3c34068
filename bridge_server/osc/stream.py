"""Stream a timeline's curves over OSC (UDP) in real time, one time-tagged bundle per frame.

A bundle's NTP timetag is the wall-clock time its frame is meant to show (start_at + t), so a
receiver that honours timetags, or an engine starting its audio at start_at, stays in sync even
when the network delays a packet. Address layouts are presets in data/osc_presets.json:

- generic: /lipsync/<channel> float, channels of whatever set the timeline has;
- vrchat: /avatar/parameters/LipSync_<channel> float (oculus15: LipSync_sil, LipSync_PP, ...
  LipSync_ou). Custom avatar parameters, because VRChat's built-in Viseme is read-only over
  OSC: the avatar's animator needs float parameters of those names driving its viseme shapes;
- vmc: /VMC/Ext/Blend/Val (name, value) per VRM vowel A I U E O (vrm5 aa ih ou ee oh), then
  /VMC/Ext/Blend/Apply, to port 39539;
- arkit: /lipsync/arkit/<blendshape> float (jawOpen, mouthFunnel, ... of the arkit set).

A channel's name on the receiver is, in order: an override (`names`, `--name CH=NAME`), the
preset's own `names`, then its `name` template. A preset naming a viseme set gets the timeline
re-animated for that set first. A preset of the same form can be read from a .json file.

    from bridge_server.osc.stream import play
    stats = play(timeline, "127.0.0.1", 9000, preset="vrchat", fps=60)
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import socket
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import Cancelled, InputError, OutputError, require
from ..core.phonemes import DATA
from ..core.progress import Progress, no_progress
from ..core.timeline import Timeline
from ..core.visemes import available_sets

PRESETS_FILE = DATA / "osc_presets.json"
FPS_RANGE = (1.0, 240.0)
LEAD = 0.1  # default wait before frame 0: the receiver (and any audio) gets ready in time
SEND_AHEAD = 0.002  # send this early: a sleep can overshoot, and a timetag says when to apply
POLL = 0.1  # longest sleep between cancellation checks while waiting for the start
OSC_RESERVED = set(" #*,/?[]{}")  # characters an OSC address part cannot contain

# One OSC message: the address, then its arguments (str names, float values).
Message = tuple[Any, ...]


# --- presets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One message: an address and args, where "{name}" / "{value}" are filled per channel."""

    address: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    port: int
    viseme_set: str | None  # the set the receiver expects; None takes any
    name_format: str  # a channel's name on the receiver, from {channel}, unless in `names`
    names: dict[str, str]
    per_channel: Template
    after: tuple[Template, ...] = ()

    def channel_name(self, channel: str, overrides: dict[str, str] | None = None) -> str:
        """The name the receiver knows a channel by: an override, the preset's own, the template."""
        if overrides and channel in overrides:
            return overrides[channel]
        return self.names.get(channel) or self.name_format.format(channel=channel)


def preset_names() -> list[str]:
    return list(_builtin_presets())


def load_preset(name: str) -> Preset:
    """A built-in preset by name, or a preset of the same form read from a .json file."""
    if name.lower().endswith(".json"):
        path = Path(name)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(
                f"cannot read OSC preset file {path}: {e}; give a JSON file shaped like one "
                f"entry of {PRESETS_FILE.name}."
            ) from None
        return _parse_preset(path.stem, spec, str(path))
    presets = _builtin_presets()
    key = name.strip().lower()
    if key not in presets:
        raise InputError(
            f"unknown OSC preset {name!r}; choose one of: {', '.join(presets)} "
            "(or give a preset .json file)."
        )
    return presets[key]


@functools.cache
def _builtin_presets() -> dict[str, Preset]:
    data = json.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    return {
        key: _parse_preset(key, spec, str(PRESETS_FILE)) for key, spec in data["presets"].items()
    }


def _parse_preset(name: str, spec: Any, where: str) -> Preset:
    def bad(problem: str) -> InputError:
        return InputError(f"{where}: OSC preset {name!r}: {problem}; fix that field.")

    if not isinstance(spec, dict):
        raise bad("must be a JSON object")
    try:
        port = int(spec.get("port", 9000))
        preset = Preset(
            name=name,
            title=str(spec.get("title", name)),
            port=port,
            viseme_set=spec.get("viseme_set") or None,
            name_format=str(spec.get("name", "{channel}")),
            names={str(k): str(v) for k, v in (spec.get("names") or {}).items()},
            per_channel=_template(spec["per_channel"]),
            after=tuple(_template(t) for t in spec.get("after") or []),
        )
    except KeyError as e:
        raise bad(f"lacks {e}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise bad(f"is malformed ({e})") from None
    if not 1 <= port <= 65535:
        raise bad(f"port {port} is outside 1..65535")
    if preset.viseme_set and preset.viseme_set not in available_sets():
        raise bad(f"viseme_set {preset.viseme_set!r} is not one of {', '.join(available_sets())}")
    for t in (preset.per_channel, *preset.after):
        if not t.address.startswith("/"):
            raise bad(f"address {t.address!r} must start with '/'")
    if any(a not in ("{name}", "{value}") for a in preset.per_channel.args):
        raise bad('per_channel args may only be "{name}" and "{value}"')
    if any(t.args for t in preset.after):
        raise bad("'after' messages take no args (they are sent as they are, once per frame)")
    # templates are filled with str.format: any other {field} would fail only while streaming
    for template, key in ((preset.name_format, "channel"), (preset.per_channel.address, "name")):
        try:
            template.format(**{key: "x"})
        except (KeyError, IndexError, ValueError):
            raise bad(f"{template!r} may only use {{{key}}}") from None
    if "{channel}" not in preset.name_format:
        raise bad(f"name {preset.name_format!r} must contain {{channel}}")
    return preset


def _template(spec: Any) -> Template:
    return Template(str(spec["address"]), tuple(str(a) for a in spec.get("args", [])))


def parse_names(pairs: list[str]) -> dict[str, str]:
    """CHANNEL=NAME pairs (from --name) as a dict."""
    out = {}
    for pair in pairs:
        channel, sep, name = pair.partition("=")
        if not sep or not channel.strip() or not name.strip():
            raise InputError(f"--name {pair!r} is not CHANNEL=NAME; e.g. --name PP=MouthClosed.")
        out[channel.strip()] = name.strip()
    return out


# --- frames --------------------------------------------------------------------------------


def check_fps(fps: float) -> float:
    """The frame rate as meant (29.97 -> 30000/1001) if OSC receivers can take it."""
    from ..core.curves import exact_fps

    lo, hi = FPS_RANGE
    if not (isinstance(fps, (int, float)) and lo <= fps <= hi):
        raise InputError(
            f"OSC fps {fps} is outside {lo:g}..{hi:g}; use the receiver's rate, e.g. 30, 60 or 90."
        )
    return exact_fps(float(fps))


def for_preset(timeline: Timeline, preset: Preset) -> Timeline:
    """The timeline re-animated for the viseme set the preset's receiver expects, if need be."""
    _check_curves(timeline)
    if preset.viseme_set is None or timeline.viseme_set == preset.viseme_set:
        return timeline
    if not timeline.phonemes:
        raise InputError(
            f"the OSC preset {preset.name!r} needs viseme set {preset.viseme_set!r} but the "
            f"timeline is {timeline.viseme_set!r} and has no phonemes to re-animate; make it "
            f"with --visemes {preset.viseme_set}."
        )
    from ..core.animate import retarget

    return retarget(timeline, preset.viseme_set)


def frames(
    timeline: Timeline,
    fps: float,
    preset: str | Preset = "generic",
    names: dict[str, str] | None = None,
) -> Iterator[tuple[float, list[Message]]]:
    """(t seconds, messages) for frames 0..N at `fps`, from the curves sampled and clamped 0..1.

    The timeline must already be of the preset's viseme set (see for_preset; play() does it).
    """
    import numpy as np

    from ..core.curves import frame_times

    preset = load_preset(preset) if isinstance(preset, str) else preset
    fps = check_fps(fps)
    _check_curves(timeline)
    if preset.viseme_set and timeline.viseme_set != preset.viseme_set:
        raise InputError(
            f"the OSC preset {preset.name!r} expects viseme set {preset.viseme_set!r}, the "
            f"timeline is {timeline.viseme_set!r}; re-animate it first with "
            f"bridge_server.core.animate.retarget(timeline, {preset.viseme_set!r})."
        )
    times = frame_times(fps, timeline.duration)
    channels = [c.channel for c in timeline.curves]
    values = np.clip([c.sample(times) for c in timeline.curves], 0.0, 1.0)
    build = message_builder(preset, channels, names)
    for i, t in enumerate(times):
        yield float(t), build(values[:, i])


def rest_messages(
    timeline: Timeline, preset: str | Preset = "generic", names: dict[str, str] | None = None
) -> list[Message]:
    """Every channel at 0: the mouth at rest, sent when playback ends or is cancelled."""
    preset = load_preset(preset) if isinstance(preset, str) else preset
    channels = [c.channel for c in timeline.curves]
    return message_builder(preset, channels, names)([0.0] * len(channels))


def message_builder(preset: Preset, channels: list[str], overrides: dict[str, str] | None):
    """A function from one frame's values (in channel order) to its messages."""
    unknown = sorted(set(overrides or {}) - set(channels))
    if unknown:
        raise InputError(
            f"--name: {', '.join(unknown)} is not a channel of this stream; its channels are "
            f"{', '.join(channels)} (names are case-sensitive)."
        )
    named = [preset.channel_name(ch, overrides) for ch in channels]
    if "{name}" in preset.per_channel.address:
        for ch, n in zip(channels, named):
            if not n or OSC_RESERVED & set(n):
                raise InputError(
                    f"channel {ch!r} would be sent as {n!r}, which is not valid in an OSC "
                    "address (no spaces or # * , / ? [ ] { }); give another with --name."
                )
    addresses = [preset.per_channel.address.format(name=n) for n in named]
    after = [(t.address,) for t in preset.after]  # fixed messages such as VMC's Apply

    def build(values) -> list[Message]:
        out: list[Message] = []
        for address, n, v in zip(addresses, named, values):
            args = [n if a == "{name}" else float(v) for a in preset.per_channel.args]
            out.append((address, *args))
        return out + after

    return build


def _check_curves(timeline: Timeline) -> None:
    if not timeline.curves:
        raise InputError(
            "the timeline has no curves to stream; make it with 'lipsync say --timeline' or "
            "'lipsync bake --timeline' (held cues alone are not streamed)."
        )


# --- targets -------------------------------------------------------------------------------


def parse_target(target: str, default_port: int | None = None) -> tuple[str, int]:
    """'HOST:PORT', '[IPv6]:PORT', ':PORT' (this machine) or 'HOST' (with a default port)."""
    text = target.strip()
    example = "give HOST:PORT, e.g. 127.0.0.1:9000, [::1]:9000 or :9000"
    if text.startswith("["):  # IPv6 in brackets, as in URLs: its colons are not the port's
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
        if not sep or (rest and port_text is None):
            raise InputError(f"OSC target {target!r} is malformed; {example}.")
    elif text.count(":") > 1:
        raise InputError(
            f"OSC target {target!r}: put an IPv6 address in brackets, e.g. [::1]:9000."
        )
    else:
        host, sep, port_text = text.partition(":")
        port_text = port_text if sep else None
    host = host or "127.0.0.1"
    if any(c.isspace() for c in host):
        raise InputError(f"OSC target {target!r} has a space in the host; {example}.")
    if port_text is None:
        if default_port is None:
            raise InputError(f"OSC target {target!r} has no port; {example}.")
        return host, default_port
    return host, check_port(port_text, target)


def check_port(port: Any, target: Any = None) -> int:
    try:
        value = int(str(port).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise InputError(
            f"OSC port {port!r}{f' in {target!r}' if target else ''} is not a number in "
            "1..65535; e.g. 9000 (VRChat) or 39539 (VMC)."
        )
    return value


def open_client(host: str, port: int):
    """A python-osc UDP client; IPv4 is preferred because most OSC apps listen on 127.0.0.1
    only, and 'localhost' may resolve to ::1 first."""
    require("pythonosc", "pip install 'lipsync-bridge[bridge]' (or: pip install python-osc)")
    from pythonosc.udp_client import UDPClient

    port = check_port(port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(
            f"cannot resolve OSC host {host!r} ({e}); give an IP address such as 127.0.0.1 "
            "or a host name this machine knows."
        ) from None
    family = min(infos, key=lambda i: i[0] != socket.AF_INET)[0]
    return UDPClient(host, port, family=family)


# --- real-time playback --------------------------------------------------------------------


@dataclass
class PlayStats:
    """What playback did. Times are wall-clock seconds (time.time()), as in the timetags."""

    frames_sent: int = 0  # bundles sent, the final rest frame included
    late_frames: int = 0  # sent after their timetag
    max_late_ms: float = 0.0
    skipped_frames: int = 0  # dropped because the next frame was already due
    start_at: float = 0.0  # timetag of frame 0
    rest_at: float = 0.0  # timetag of the final all-zero frame


def play(
    timeline: Timeline,
    host: str,
    port: int,
    *,
    preset: str | Preset = "generic",
    fps: float = 60,
    start_at: float | None = None,
    loop: bool = False,
    names: dict[str, str] | None = None,
    progress: Progress = no_progress,
    clock: Any = time,
) -> PlayStats:
    """Stream the timeline to host:port in real time and return what was sent.

    Frame i is a bundle timetagged start_at + i/fps (wall clock; default: now + LEAD), sent
    SEND_AHEAD before that. After the last frame (or on cancel) a frame sets every channel to
    0. `loop` repeats on the same frame grid until cancelled; `names` maps channels to other
    names on the receiver. `progress(fraction, stage)` is called at least once per frame;
    raising Cancelled from it stops playback (Ctrl-C too becomes Cancelled). `clock` needs
    time(), monotonic() and sleep(), like the time module (tests pass a virtual one).
    """
    preset = load_preset(preset) if isinstance(preset, str) else preset
    fps = check_fps(fps)
    timeline = for_preset(timeline, preset)
    plan = list(frames(timeline, fps, preset, names))
    rest = rest_messages(timeline, preset, names)
    if start_at is not None and not math.isfinite(start_at):
        raise InputError(f"start time {start_at} is not a finite number; give time.time() + delay.")
    client = open_client(host, port)
    player = _Player(client, f"{host}:{port}", fps, clock, progress, start_at)
    try:
        try:
            player.run(plan, rest, loop)
        except BaseException:
            player.rest_now(rest)  # never leave the mouth open on the receiver
            raise
    except KeyboardInterrupt:
        raise Cancelled(
            f"OSC playback stopped after {player.stats.frames_sent} frames; "
            "the mouth was set to rest."
        ) from None
    finally:
        client.close()
    return player.stats


class _Player:
    """Sends frames on time. Waits run on the monotonic clock, so a wall-clock step during
    playback cannot stall or burst frames; timetags stay on the wall clock receivers share."""

    def __init__(self, client, target: str, fps: float, clock, progress: Progress, start_at):
        self.client, self.target, self.fps = client, target, fps
        self.clock, self.progress = clock, progress
        self.wall0, self.mono0 = clock.time(), clock.monotonic()
        self.stats = PlayStats(start_at=self.wall0 + LEAD if start_at is None else start_at)
        self.last_tag: float | None = None  # timetag of the last frame sent
        self.rest_sent = False

    def now(self) -> float:
        """Wall-clock time, advanced by the monotonic clock since the start."""
        return self.wall0 + (self.clock.monotonic() - self.mono0)

    def run(self, plan: list[tuple[float, list[Message]]], rest: list[Message], loop: bool):
        period = len(plan) / self.fps  # a loop's next pass starts on the next frame slot
        passes = itertools.count() if loop else range(1)
        share = 1 / (len(plan) + 1)  # of the progress, per frame; the rest frame is the last
        for k in passes:
            stage = f"loop {k + 1}" if loop else "streaming"
            for i, (t, messages) in enumerate(plan):
                tag = self.stats.start_at + k * period + t
                bundle = make_bundle(tag, messages)  # built before the wait: it takes ~0.3 ms
                self.wait(tag - SEND_AHEAD, i * share, stage)
                if i + 1 < len(plan) and self.now() >= tag + 1 / self.fps - SEND_AHEAD:
                    self.stats.skipped_frames += 1  # stale: the next frame would replace it now
                    continue
                self.send(tag, bundle)
                self.last_tag = tag
        tag = self.last_tag + 1 / self.fps  # the last frame of a pass is never skipped
        bundle = make_bundle(tag, rest)
        self.wait(tag - SEND_AHEAD, 1 - share, "rest")
        self.send(tag, bundle)
        self.rest_sent, self.stats.rest_at = True, tag
        self.progress(1.0, "done")

    def wait(self, until: float, done: float, stage: str) -> None:
        """Sleep until the wall-clock time `until`, asking `progress` about cancelling between."""
        while True:
            self.progress(done, stage if until - self.now() < POLL else "waiting")
            remaining = until - self.now()
            if remaining <= 0:
                return
            self.clock.sleep(min(remaining, POLL))

    def send(self, tag: float, bundle) -> None:
        late = self.now() - tag
        try:
            self.client.send(bundle)
        except OSError as e:
            raise OutputError(
                f"cannot send OSC to {self.target}: {e}; check the address and the network."
            ) from None
        s = self.stats
        s.frames_sent += 1
        if late > 0:
            s.late_frames += 1
            s.max_late_ms = max(s.max_late_ms, late * 1000)

    def rest_now(self, rest: list[Message]) -> None:
        """On cancel or error: the rest frame at once, timetagged no earlier than the next slot
        so a receiver holding the previous frame until its time applies the rest after it."""
        if self.rest_sent:
            return
        tag = self.now()
        if self.last_tag is not None:
            tag = max(tag, self.last_tag + 1 / self.fps)
        with suppress(OSError, OutputError):
            self.send(tag, make_bundle(tag, rest))
            self.rest_sent, self.stats.rest_at = True, tag


def make_bundle(tag: float, messages: list[Message]):
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    bundle = OscBundleBuilder(tag)
    for address, *args in messages:
        m = OscMessageBuilder(address)
        for a in args:
            m.add_arg(a, "s" if isinstance(a, str) else "f")  # floats as float32, never ints
        bundle.add_content(m.build())
    return bundle.build()

"""`lipsync say`, `bake` and `export`: a line of text or a recording in, a timeline and files out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.animate import retarget
from ..core.timeline import Timeline
from ..formats.exporters import FORMATS, export
from ..formats.outputs import check_writable
from ..formats.plot import plot_png
from ..media.audio import load_audio, wav_bytes
from ..pipeline import bake, in_sync, say, sync_note
from .files import emit, export_format, outputs_checked, read_text, report, script, write_outputs
from .options import EXIT_CODES, animation_options, command, recording, recording_options, settings
from .progress import ProgressBar

SAY_EXAMPLES = """examples:
  lipsync say "Pack my box with five dozen liquor jugs." -o line.wav --timeline line.json \\
      --visemes oculus15 --fps 24 --plot line.png
  lipsync say --text-file script.txt --engine piper -o line.wav --export line.tsv
  lipsync say "Hello there." --visemes rhubarb --holds --export cues.tsv   # 2D, one shape at a time
  echo "Hi." | lipsync say - --timeline -          # timeline JSON to standard output"""

BAKE_EXAMPLES = """examples:
  lipsync bake dialogue.wav --timeline dialogue.json                 # transcribe, align, animate
  lipsync bake dialogue.wav --text "the script of the line" --timeline dialogue.json
  lipsync bake dialogue.wav --text-file script.txt --visemes rhubarb --format rhubarb-tsv -o cues.tsv
  lipsync bake interview.mp4 --plot interview.png                    # the audio track of a video
  lipsync bake take.wav --engine phoneloop --timeline take.json      # no transcript, any language"""


def add_commands(sub) -> None:
    add_say(sub)
    _add_bake(sub)
    _add_export(sub)


# --- say -----------------------------------------------------------------------------------


def add_say(sub) -> None:
    p = command(
        sub,
        "say",
        "speak a line and animate it",
        "Speak TEXT with a built-in voice and animate it. Phoneme times come from the "
        "synthesiser itself, so the mouth matches the audio exactly.",
        SAY_EXAMPLES,
    )
    p.add_argument("text", nargs="?", help="the line to speak ('-' reads standard input)")
    p.add_argument("--text-file", metavar="FILE", help="read the line from a UTF-8 text file")
    _say_outputs(p)
    _voice_options(p)
    animation_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=cmd_say)


def _say_outputs(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("outputs (without any, the timeline JSON goes to standard output)")
    g.add_argument("-o", "--output", metavar="WAV", help="write the speech as a WAV file")
    g.add_argument(
        "--timeline", metavar="JSON", help="write the timeline document ('-' for stdout)"
    )
    g.add_argument("--plot", metavar="PNG", help="write a picture of the curves over the waveform")
    g.add_argument(
        "--export",
        metavar="FILE",
        help="also write an export; format from the suffix "
        "(.tsv Rhubarb TSV, .xml Rhubarb XML, .dat Moho, .pgo Papagayo, .csv curves) or --format",
    )
    g.add_argument("--format", choices=sorted(FORMATS), help="format of --export")


def _voice_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("voice")
    g.add_argument(
        "--engine",
        default="espeak",
        choices=["espeak", "piper"],
        help="espeak: fast, many languages (default); piper: natural neural voice",
    )
    g.add_argument(
        "--voice",
        default="",
        help="espeak: a voice/language such as en-us, en-gb, de, ja (see 'lipsync voices'), "
        "or auto: the voice for the text's writing system; piper: 'joe' or the path of a "
        ".onnx voice. A voice that cannot read the text is refused before speaking",
    )
    g.add_argument(
        "--lang",
        default="",
        help="language, e.g. en-us, en-gb, de, fr, es (espeak "
        "picks its voice for it; a Piper voice must speak it)",
    )
    g.add_argument("--rate", type=int, metavar="WPM", help="speaking rate in words per minute")
    g.add_argument(
        "--max-chars", type=int, default=20_000, help="refuse longer texts (default 20000)"
    )
    g.add_argument(
        "--skip-unknown",
        action="store_true",
        help="drop characters no voice can say (emoji, control codes) instead of failing",
    )


def cmd_say(a: argparse.Namespace) -> int:
    text = read_text(a)
    if not (a.output or a.timeline or a.plot or a.export):
        a.timeline = "-"
    fmt = export_format(a.export, a.format)
    check_writable([Path(p) for p in (a.output, a.timeline, a.plot, a.export) if p and p != "-"])
    bar = ProgressBar(not a.quiet and (len(text) > 400 or sys.stderr.isatty()))
    speech, timeline = say(text, engine=a.engine, voice=a.voice, lang=a.lang, rate_wpm=a.rate,
                           viseme_set=a.visemes, fps=a.fps, settings=settings(a),
                           max_chars=a.max_chars, skip_unknown=a.skip_unknown,
                           progress=bar)  # fmt: skip
    files: dict[str, bytes | str] = {}
    if a.output:
        timeline.source["audio"] = Path(a.output).name
        files[a.output] = wav_bytes(speech.audio, speech.sample_rate)
    if a.timeline:
        files[a.timeline] = timeline.to_json()
    if a.plot:
        files[a.plot] = plot_png(timeline, speech.audio, speech.sample_rate)
    if a.export:
        files[a.export] = export(timeline, fmt, sound_file=a.output or "")
    emit(files)
    report(timeline, files, a.quiet)
    return 0


# --- bake ----------------------------------------------------------------------------------


def _add_bake(sub) -> None:
    p = command(
        sub,
        "bake",
        "animate a recording (with or without its script)",
        "Animate a recording: transcribe it (or use its script), align every phoneme to the "
        "sound, and write the timeline or an export.",
        BAKE_EXAMPLES,
    )
    p.add_argument("audio", help="WAV, FLAC, OGG, MP3, M4A, or a video (MP4, MOV, MKV, MPG)")
    recording_options(p)
    p.set_defaults(func=cmd_bake)


def cmd_bake(a: argparse.Namespace) -> int:
    audio = Path(a.audio)
    text = script(a, audio)
    fmt = outputs_checked(a)
    sound = load_audio(audio)  # decoded once, for the bake and the plot
    moved = 0.0
    if a.fix_sync:
        sound, moved = in_sync(audio, sound, progress=ProgressBar(not a.quiet))
    timeline = bake(sound, **recording(a, text))
    if a.fix_sync:
        sync_note(timeline, moved)
    write_outputs(a, timeline, fmt, audio, sound)
    return 0


# --- export --------------------------------------------------------------------------------


def _add_export(sub) -> None:
    formats = "\n".join(f"  {f.name:<14} {f.description}" for f in FORMATS.values())
    p = sub.add_parser(
        "export",
        help="convert a timeline to another format",
        description="Write a timeline in a format other tools read.",
        epilog=f"formats:\n{formats}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("timeline", help="timeline JSON from 'lipsync say --timeline' ('-' for stdin)")
    p.add_argument("-o", "--output", required=True, help="file to write ('-' for standard output)")
    p.add_argument(
        "--format", choices=sorted(FORMATS), help="output format (default: from the suffix)"
    )
    p.add_argument("--visemes", help="re-animate for another viseme set first")
    p.add_argument("--fps", type=float, help="re-animate at another frame rate first")
    p.set_defaults(func=cmd_export)


def cmd_export(a: argparse.Namespace) -> int:
    fmt = export_format(a.output, a.format)
    if a.output != "-":
        check_writable([Path(a.output)])
    timeline = (
        Timeline.from_json(sys.stdin.read(), "standard input")
        if a.timeline == "-"
        else Timeline.load(a.timeline)
    )
    if a.visemes or a.fps:
        timeline = retarget(timeline, a.visemes or timeline.viseme_set, a.fps)
    emit({a.output: export(timeline, fmt, sound_file=timeline.source.get("audio", ""))})
    return 0

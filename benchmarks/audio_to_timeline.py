"""Audio -> timeline: alignment accuracy, agreement with Rhubarb, speed and memory.

    .venv/bin/python benchmarks/audio_to_timeline.py [--hour]

Every measure is taken twice in the same run: the bake with its phone boundaries as the aligner
left them (`--no-refine`), and refined by the boundary model (the default; speech/refine.py).

1. accuracy on speech with exact reference times: our two voices (and two of eSpeak's other
   English accents, rp and 029) say the 23 test sentences,
   their own phoneme times are the reference, and `bake --text` must find them again: the
   share of phone boundaries within 20 ms and the mean error (phones matched in order);
   the whole bake on eSpeak's held-out accents (--accents N lines, clean and degraded: a line
   that fails to align goes to Whisper, and that shows here); German (eSpeak's de: the
   pronunciation rules on Whisper's word times, no aligner); and on real speech, word
   boundaries in the two GRID clips against GRID's own alignment;
2. agreement with Rhubarb Lip Sync 1.13 on the 356.6 s LibriVox reading: our rhubarb-set cues
   against Rhubarb's own, per 10 ms, and how often our mouth is closed (A) where Rhubarb's is;
3. speed as x realtime on that reading, with its script and with Whisper transcribing, each in
   a fresh process so peak memory (max RSS) is its own; --hour adds one hour of audio;
   --rhubarb times Rhubarb Lip Sync on the same reading in the same run (built from source by
   benchmarks/build_rhubarb.sh; about 4 minutes) and adds "x faster than Rhubarb".
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_server import engines  # noqa: E402
from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.media.audio import load_audio, wav_bytes  # noqa: E402
from bridge_server.pipeline import bake  # noqa: E402
from bridge_server.speech.refine import boundaries  # noqa: E402
from models import exact_speech  # noqa: E402

KITTENS = ROOT.parent / "shared" / "data" / "librivox_kittens"
READING = KITTENS / "threelittlekittens_01_rountreesmith.ogg"
GRID = ROOT.parent / "shared" / "data" / "grid"
RHUBARB = Path.home() / ".cache" / "lipsync" / "rhubarb" / "build" / "rhubarb" / "rhubarb"
SENTENCES = (ROOT / "tests" / "data" / "harvard.txt").read_text().splitlines()


def boundary_errors(reference, found) -> tuple[list[float], int]:
    """Start-time errors (ms) of phones matched in order by their Oculus viseme class."""
    vset = load_set("oculus15")
    ref = [vset.viseme_for(p.ipa) for p in reference]
    hyp = [vset.viseme_for(p.ipa) for p in found]
    errors = []
    for a, b, n in SequenceMatcher(None, ref, hyp, autojunk=False).get_matching_blocks():
        errors += [abs(reference[a + k].start - found[b + k].start) * 1000 for k in range(n)]
    return errors, len(reference)


# (label, engine, voice): our two voices, and eSpeak's British RP and Caribbean English, accents
# the aligner's US English model fits less well (they once failed to align half the time)
VOICES = [("espeak", "espeak", ""), ("piper", "piper", ""),
          ("rp", "espeak", "en-gb-x-rp"), ("029", "espeak", "en-029")]  # fmt: skip


def accuracy(tmp: Path, refine: bool) -> list[tuple]:
    """Each voice says the test sentences; `bake --text` must find its phone starts again."""
    rows = []
    for label, engine, voice in VOICES:
        said, late = _spoken(engine, voice)
        errors, total = [], 0
        for i, (text, speech, truth) in enumerate(said):
            wav = tmp / f"{label}{i}.wav"
            wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
            timeline = bake(wav, text=text, refine=refine)
            e, n = boundary_errors(truth, timeline.phonemes)
            errors += e
            total += n
        e = np.array(errors)
        rows.append((label, total, len(e) / total * 100, (e <= 20).mean() * 100, e.mean(),
                     np.median(e), late))  # fmt: skip
    return rows


# Each line is said once and baked both ways (`_both`): libespeak carries state from one
# utterance to the next, so a line said again sounds slightly different, and the aligned and
# refined rows would measure other sounds (and Whisper hear other words).
@functools.cache
def _spoken(engine: str, voice: str) -> tuple[list, float]:
    """(text, speech, true phone times) of each test sentence, and the voice's lag. eSpeak's
    stops start where their closure does (exact_speech.closure_starts), as people label them.
    Piper says its phones later than they sound (by about 26 ms), so its times move earlier by
    its lag (exact_speech.lag, measured against the aligner)."""
    tts = engines.create(engine, voice=voice)  # "": the engine's default voice
    said = [(text, tts.synthesize(text)) for text in SENTENCES]
    late = 0.0
    if engine == "piper":
        late = exact_speech.lag([(load_audio(wav_bytes(s.audio, s.sample_rate)), text,
                                  s.phonemes) for text, s in said])  # fmt: skip
    out = []
    for text, speech in said:
        truth = speech.phonemes
        if engine == "espeak":  # its stops start at the burst; people's at the closure
            truth = exact_speech.closure_starts(truth, np.asarray(speech.audio), speech.sample_rate)
        out.append((text, speech, [replace(p, start=p.start - late) for p in truth]))
    return out, late


@functools.cache
def _said(voice: str, text: str) -> tuple[np.ndarray, int, list]:
    return exact_speech.synthesize(voice, text)


def accents(tmp: Path, n: int, refine: bool) -> list[tuple]:
    """The whole bake on voices nothing was tuned on: eSpeak's British RP and Caribbean English
    in two variants (models/exact_speech.py's held-out voices), n lines of dictionary words,
    clean and degraded with their script, and clean with none (Whisper hears them). Every
    reference boundary counts: a line that does not align goes to Whisper, as in any bake. Stops
    start at their closure, as people label them."""
    rng = np.random.default_rng(11)
    words = exact_speech.dictionary_words()
    voices = [a + v for a in exact_speech.HELD_ACCENTS for v in exact_speech.HELD_VARIANTS]
    rows = []
    for label, degraded, script in (
        ("clean", False, True), ("degraded", True, True), ("no script", False, False)
    ):  # fmt: skip
        errors, total = [], 0
        for k, text in enumerate(exact_speech.lines(n, rng, words)):
            audio, rate, truth = _said(voices[k % len(voices)], text)
            if degraded:
                audio, scale = exact_speech.degrade(audio, rate, rng)
                truth = exact_speech.scaled(truth, scale)
            wav = tmp / f"accent{k}.wav"
            wav.write_bytes(wav_bytes(audio, rate))
            timeline = bake(wav, text=text if script else None, refine=refine)
            errors += [
                abs(t - b.time) * 1000 for b, t in exact_speech.pairs(truth, timeline.phonemes)
            ]
            total += len(boundaries(truth))
        rows.append(_row(label, errors, total))
    return rows


def _row(label: str, errors: list[float], total: int) -> tuple:
    """(label, boundaries, matched %, within 10/20/25 ms %, mean ms) of one whole-bake table row."""
    e = np.array(errors)
    return (label, total, len(e) / total * 100, *[(e <= ms).mean() * 100 for ms in (10, 20, 25)],
            e.mean())  # fmt: skip


GERMAN = [
    "Der Hund läuft schnell über die grüne Wiese.",
    "Morgen fahren wir mit dem Zug nach Berlin.",
    "Bitte bring mir ein Glas kaltes Wasser.",
    "Die Kinder spielen im Garten mit einem Ball.",
    "Im Winter ist es draußen sehr kalt und dunkel.",
    "Mein Bruder kocht heute Abend eine Suppe.",
    "Das Buch liegt auf dem Tisch neben der Lampe.",
    "Wir haben gestern lange auf den Bus gewartet.",
    "Meine Mutter trinkt jeden Morgen starken Kaffee.",
    "Am Montag beginnt die Schule wieder um acht.",
]


def other_language(tmp: Path, refine: bool) -> tuple:
    """Not English: eSpeak's German says ten sentences with their script; phonemes come from
    the pronunciation rules spread over Whisper's word times (no aligner for German), and the
    refinement moves their boundaries. Boundaries by broad class, in order, as for the accents."""
    errors, total = [], 0
    for k, text in enumerate(GERMAN):
        audio, rate, truth = _said("de", text)
        wav = tmp / f"de{k}.wav"
        wav.write_bytes(wav_bytes(audio, rate))
        timeline = bake(wav, text=text, lang="de", refine=refine)
        errors += [abs(t - b.time) * 1000 for b, t in exact_speech.pairs(truth, timeline.phonemes)]
        total += len(boundaries(truth))
    return _row("German", errors, total)


def hand_labelled(folder: Path, refine: bool) -> tuple:
    """`lipsync evaluate`'s scores summed over the hand-labelled utterances in `folder`
    (`labelled_utterances`: TIMIT's layout or TextGrids; the words are the script): phone
    boundaries within 10/20/25 ms and mean error, Rhubarb-shape agreement per 10 ms, p/b/m
    closures closed, and the share within 20 ms by the broad class of the phone after each
    boundary."""
    from bridge_server.evaluate.references import labelled_utterances
    from bridge_server.evaluate.scores import evaluate

    # sums over utterances of: boundaries, of them within 10/20/25 ms, error (ms), frames,
    # frames agreeing, closures closed, closures
    total = np.zeros(9)
    classes: dict[str, np.ndarray] = {}  # class -> (boundaries, of them within 20 ms)
    n = 0
    for sound, ref in labelled_utterances(folder):
        baked = bake(sound, text=" ".join(w.label for w in ref.words), viseme_set="rhubarb",
                     refine=refine)  # fmt: skip
        r = evaluate(baked, ref, "rhubarb")
        ph, v, c = r.phones, r.visemes, r.closures  # closures: None in a line without p, b, m
        per = (ph.within_10ms, ph.within_20ms, ph.within_25ms, ph.mean_abs_error_ms)
        total += [ph.boundaries, *(x * ph.boundaries for x in per), v.frames,
                  v.agreement * v.frames, c.hits if c else 0, c.closures if c else 0]  # fmt: skip
        for k, got in ph.by_class.items():
            classes[k] = classes.get(k, 0) + np.array([1, got["within_20ms"]]) * got["boundaries"]
        n += 1
    bounds, w10, w20, w25, err, frames, agree, hits, closures = total
    by_class = {k: f"{k} {100 * h / b:.0f}% ({b:.0f})" for k, (b, h) in classes.items()}
    return (n, int(bounds), *(100 * x / bounds for x in (w10, w20, w25)), err / bounds,
            100 * agree / frames, int(hits), int(closures), ", ".join(by_class.values()))  # fmt: skip


def grid_words(refine: bool) -> tuple[int, float, float]:
    """Word starts and ends found by `bake --text` in the two GRID clips that come with word
    alignments (real speech; GRID's own forced alignment, 10 ms steps): count, share within
    20 ms, mean error (ms)."""
    rows = dict(
        line.split("\t")[1:3] for line in (GRID / "transcripts.tsv").read_text().splitlines()[1:]
    )
    errors = []
    for path in sorted((GRID / "align").glob("*.align")):
        code = path.stem.split("_")[-1]
        ref = [line.split() for line in path.read_text().splitlines()]
        ref = [(int(a) / 25000, int(b) / 25000) for a, b, w in ref if w != "sil"]
        video = next((GRID / "videos").glob(f"*{code}.mpg"))
        found = bake(video, text=rows[code], refine=refine).words
        assert len(found) == len(ref), (code, [w.text for w in found])
        errors += [
            abs(t - u) * 1000 for w, r in zip(found, ref) for t, u in zip((w.start, w.end), r)
        ]
    e = np.array(errors)
    return len(e), (e <= 20).mean() * 100, e.mean()


def rhubarb_agreement(refine: bool) -> tuple[float, float, float, int]:
    expected = json.loads(
        (KITTENS / "threelittlekittens_01_rountreesmith-expected.json").read_text()
    )
    theirs = _per_centisecond(expected["mouthCues"])
    script = (KITTENS / "threelittlekittens_01_rountreesmith.txt").read_text()
    from bridge_server.formats.exporters import export

    baked = bake(READING, text=script, viseme_set="rhubarb", refine=refine)
    ours_json = json.loads(export(baked, "rhubarb-json"))
    ours = _per_centisecond(ours_json["mouthCues"])
    n = min(len(ours), len(theirs))
    ours, theirs = ours[:n], theirs[:n]
    closed = theirs == "A"
    events = _matched_closures(expected["mouthCues"], ours_json["mouthCues"])
    return (ours == theirs).mean() * 100, (ours[closed] == "A").mean() * 100, events, n


def _matched_closures(theirs, ours, slack: float = 0.02) -> tuple[int, int, int]:
    """Rhubarb's closures (A cues) that one of ours overlaps, and the counts of both."""
    a = [(float(c["start"]), float(c["end"])) for c in theirs if c["value"] == "A"]
    b = [(float(c["start"]), float(c["end"])) for c in ours if c["value"] == "A"]
    hit = sum(any(s < e1 + slack and e > s1 - slack for s, e in b) for s1, e1 in a)
    return hit, len(a), len(b)


def _per_centisecond(cues) -> np.ndarray:
    end = round(float(cues[-1]["end"]) * 100)
    out = np.full(end, "X", dtype="<U1")
    for c in cues:
        out[round(float(c["start"]) * 100) : round(float(c["end"]) * 100)] = c["value"]
    return out


def timed_run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of one `lipsync bake` in a fresh process."""
    # Peak memory from /proc (VmHWM), of the process and of its alignment workers (an upper
    # bound: pages they share count twice); ru_maxrss of a child started from this large
    # process would count this process's memory too.
    code = (
        "import time; from bridge_server.cli import main; t = time.perf_counter(); "
        f"rc = main({args!r}); wall = time.perf_counter() - t; "
        f"from benchmarks.audio_to_timeline import peak_mb; print(wall, peak_mb(), rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    wall, rss, rc = out.stdout.split()[-3:]
    if rc != "0":
        raise SystemExit(f"bake failed: {out.stderr[-2000:]}")
    return float(wall), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--hour", action="store_true", help="also bake one hour of audio (takes minutes)"
    )
    ap.add_argument("--no-accuracy", action="store_true", help="skip table 1")
    ap.add_argument(
        "--hand-labelled", type=Path, nargs="+", default=[], metavar="DIR",
        help="folders of hand-labelled utterances (.wav, or TIMIT's SPHERE .WAV, with its .phn "
        "and .wrd, or with a TextGrid of phone and word tiers) to score in table 1, a row each",
    )  # fmt: skip
    ap.add_argument(
        "--accents", type=int, default=30, metavar="N",
        help="lines per condition of the held-out accents in table 1 (0: none)",
    )  # fmt: skip
    ap.add_argument(
        "--rhubarb",
        nargs="?",
        const=str(RHUBARB),
        metavar="BINARY",
        help=f"also time Rhubarb (default binary: {RHUBARB}, from benchmarks/build_rhubarb.sh)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(
            "\n1. Alignment against exact synthesiser times (bake --text, phones matched in order)"
        )
        print(f"{'voice':<8}{'bake':<9}{'phones':>8}{'matched %':>11}{'<=20 ms %':>11}{'mean ms':>9}"
              f"{'median ms':>11}")  # fmt: skip
        for r, step in [] if args.no_accuracy else _both(accuracy, tmp):
            for row in r:
                print(f"{row[0]:<8}{step:<9}{row[1]:>8}{row[2]:>11.1f}{row[3]:>11.1f}"
                      f"{row[4]:>9.1f}{row[5]:>11.1f}" + (f"  (its lag, {row[6] * 1000:.0f} ms, "
                      "removed)" if row[6] else ""))  # fmt: skip
        rows = []
        if args.accents and not args.no_accuracy:
            print(
                f"\nheld-out accents (rp, 029; variants m7, f4), {args.accents} lines of "
                "dictionary words each, the whole bake (boundaries by broad class, in order); "
                "German: the pronunciation rules on Whisper's word times"
            )
            rows = _both(accents, tmp, args.accents)
            rows += [([r], step) for r, step in _both(other_language, tmp)]
        if rows:
            print(f"{'lines':<10}{'bake':<9}{'bounds':>8}{'matched %':>11}{'<=10 ms':>9}"
                  f"{'<=20 ms':>9}{'<=25 ms':>9}{'mean ms':>9}")  # fmt: skip
        for r, step in rows:
            for row in r:
                print(f"{row[0]:<10}{step:<9}{row[1]:>8}{row[2]:>11.1f}{row[3]:>9.1f}"
                      f"{row[4]:>9.1f}{row[5]:>9.1f}{row[6]:>9.1f}")  # fmt: skip
        for folder, ((n, b, *share, mean, shapes, hit, of, by_class), step) in (
            (f, row) for f in args.hand_labelled for row in _both(hand_labelled, f)
        ):
            print(
                f"hand-labelled ({n} utterances in {folder.name}, {step}): {b} phone "
                f"boundaries within 10/20/25 ms {share[0]:.1f} / {share[1]:.1f} / {share[2]:.1f}%, "
                f"mean error {mean:.1f} ms; Rhubarb shapes {shapes:.1f}%; closures {hit}/{of}; "
                f"within 20 ms by the class of the phone after the boundary: {by_class}"
            )
        for (n, near, mean), step in _both(grid_words):
            print(
                f"real speech (GRID, 2 clips, {step}): {n} word boundaries against GRID's own "
                f"alignment: {near:.1f}% within 20 ms, mean error {mean:.1f} ms"
            )

        print("\n2. Agreement with Rhubarb Lip Sync 1.13 on the 356.6 s reading (its script)")
        for (agree, closed, (hit, theirs, ours), n), step in _both(rhubarb_agreement):
            print(
                f"{step}: per 10 ms over {n / 100:.1f} s: same shape {agree:.1f}%; where "
                f"Rhubarb's mouth is closed (A) ours is too {closed:.1f}%; closures: {hit} of "
                f"Rhubarb's {theirs} A cues overlap one of our {ours} ({hit / theirs:.0%})"
            )

        script = KITTENS / "threelittlekittens_01_rountreesmith.txt"
        duration = 356.57
        with_script = [
            str(READING),
            "--text-file",
            str(script),
            "-q",
            "--timeline",
            str(tmp / "a.json"),
        ]
        runs = [
            ("script, aligned", [*with_script, "--no-refine"]),
            ("script, refined", with_script),
            (
                "Whisper tiny.en",
                [str(READING), "--no-sidecar", "-q", "--timeline", str(tmp / "b.json")],
            ),
        ]
        if args.hour:
            hour = tmp / "hour.wav"
            _make_hour(hour)
            runs.append(("1 hour, Whisper", [str(hour), "-q", "--timeline", str(tmp / "c.json")]))
        print("\n3. Speed and memory (each run a fresh process)")
        header = f"{'run':<18}{'audio s':>9}{'wall s':>9}{'x realtime':>12}{'peak MB':>9}"
        rhubarb = rhubarb_run(Path(args.rhubarb), tmp) if args.rhubarb else None
        print(header + ("  x faster than Rhubarb" if rhubarb else ""))
        if rhubarb:
            wall, rss = rhubarb
            print(
                f"{'Rhubarb (source)':<18}{duration:>9.1f}{wall:>9.1f}{duration / wall:>12.1f}{rss:>9.0f}"
            )
        for label, argv in runs:
            wall, rss = timed_run(["bake", *argv])
            seconds = 3600.0 if label.startswith("1 hour") else duration
            faster = f"{rhubarb[0] / wall:>23.1f}" if rhubarb and seconds == duration else ""
            print(
                f"{label:<18}{seconds:>9.1f}{wall:>9.1f}{seconds / wall:>12.1f}{rss:>9.0f}{faster}"
            )


def _both(measure, *args) -> list[tuple]:
    """(result, "aligned") and (result, "refined"): one measure without and with refinement."""
    return [(measure(*args, refine=refine), step)
            for refine, step in ((False, "aligned"), (True, "refined"))]  # fmt: skip


def peak_mb() -> float:
    """Peak resident memory (VmHWM) of this process, plus what its alignment workers hold of
    their own (private pages; the pages they share with this process are counted once)."""
    import os

    def fields(path: str) -> dict[str, str]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return {}
        pairs = (line.split(":", 1) for line in lines if ":" in line)
        return {k: (v.split() or [""])[0] for k, v in pairs}

    me = str(os.getpid())
    kids = [
        p
        for p in os.listdir("/proc")
        if p.isdigit() and fields(f"/proc/{p}/status").get("PPid") == me
    ]
    own = [fields(f"/proc/{p}/smaps_rollup") for p in kids]
    private = sum(int(f.get("Private_Clean", 0)) + int(f.get("Private_Dirty", 0)) for f in own)
    return (int(fields(f"/proc/{me}/status")["VmHWM"]) + private) / 1024


def rhubarb_run(binary: Path, tmp: Path) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of Rhubarb (default settings) on the reading."""
    if not binary.is_file():
        raise SystemExit(f"no Rhubarb binary at {binary}; build it: benchmarks/build_rhubarb.sh")
    cmd = [str(binary), "-f", "json", "-o", str(tmp / "rhubarb.json"), str(READING)]
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        f"subprocess.run({cmd!r}, check=True, capture_output=True); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, rss = out.stdout.split()
    return float(wall), float(rss)


def _make_hour(path: Path) -> None:
    """One hour of real speech: the reading, repeated."""
    from bridge_server.media.audio import load_audio

    reading = load_audio(READING).samples
    reps = int(np.ceil(3600 * 16000 / len(reading)))
    path.write_bytes(wav_bytes(np.tile(reading, reps)[: 3600 * 16000], 16000))


if __name__ == "__main__":
    main()

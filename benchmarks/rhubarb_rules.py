"""What each of Rhubarb Lip Sync's animation rules costs or gains, measured per 10 ms.

    .venv/bin/python benchmarks/rhubarb_rules.py [--voices espeak piper] [--rhubarb BINARY]

Rows: our held cues before this stage (blended curves, one shape per 24 fps frame), every
phone's first-choice shape on its time (the default now), Rhubarb's full rules
(bridge_server/core/rhubarb.py, `--rhubarb-rules`), and the full rules less one at a time.
1. Text-to-speech lines (the 23 test sentences): the reference is the synthesiser's exact
   phone times, each phone shown as its first-choice shape. Ours from the exact phones (what
   the rules alone do) and from `bake --text` on the audio (alignment plus rules). Closures:
   p/b/m whose middle shows A.
2. The 356.6 s LibriVox reading: our bake with its script against Rhubarb 1.13's own cues, and
   how fast each row makes its cues (x realtime).
3. With --rhubarb (benchmarks/build_rhubarb.sh): Rhubarb's own phones, from its log, through
   our port against the shapes Rhubarb drew from them: how faithful the port is.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_server import engines  # noqa: E402
from bridge_server.core.curves import hold_cues  # noqa: E402
from bridge_server.core.rhubarb import ALL_RULES, RULES, avoid_static, rhubarb_cues, shape_rules  # noqa: E402
from bridge_server.core.timeline import Phoneme, VisemeCue  # noqa: E402
from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.media.audio import load_audio, wav_bytes  # noqa: E402
from bridge_server.pipeline import bake  # noqa: E402

KITTENS = ROOT.parent / "shared" / "data" / "librivox_kittens"
READING = KITTENS / "threelittlekittens_01_rountreesmith.ogg"
SENTENCES = (ROOT / "tests" / "data" / "harvard.txt").read_text().splitlines()
RHUBARB = Path.home() / ".cache" / "lipsync" / "rhubarb" / "build" / "rhubarb" / "rhubarb"
VSET = load_set("rhubarb")
CONFIGS = {
    "each phone's shape (default)": frozenset(),
    "Rhubarb's rules (--rhubarb-rules)": ALL_RULES,
} | {f"  without {rule}": ALL_RULES - {rule} for rule in RULES}


def labels(cues, n: int) -> np.ndarray:
    """The shape shown in each 10 ms frame (rest where no cue)."""
    out = np.full(n, "X", dtype="<U1")
    for c in cues:
        out[round(c.start * 100) : round(c.end * 100)] = c.viseme
    return out


def first_choice(phonemes: list[Phoneme]) -> list:
    return [VisemeCue(VSET.viseme_for(p.ipa), p.start, p.end) for p in phonemes]


def variants(phonemes: list[Phoneme], duration: float, timed: bool = False) -> dict:
    """Each row's cues (with the seconds they took when `timed`)."""
    makers = {"before: curves held per 24 fps frame": lambda: hold_cues_ours(phonemes, duration)}
    for name, rules in CONFIGS.items():  # at 24 fps, as a bake makes them (contacts on frames)
        makers[name] = lambda rules=rules: rhubarb_cues(phonemes, duration, VSET.table, rules=rules,
                                                        fps=24.0)  # fmt: skip
    out = {}
    for name, make in makers.items():
        start = time.perf_counter()
        cues = make()
        out[name] = (cues, time.perf_counter() - start) if timed else cues
    return out


def hold_cues_ours(phonemes: list[Phoneme], duration: float) -> list:
    """The held cues of the stage this replaces: our blended curves, one shape per frame."""
    plain = VSET.__class__(**{**VSET.__dict__, "cue_rules": ""})
    return hold_cues(phonemes, plain, 24.0, duration)


def tts_table(voices: list[str], tmp: Path) -> None:
    print("\n1. Against exact text-to-speech phone times (first-choice shapes, per 10 ms)")
    for voice in voices:
        try:
            tts = engines.create(voice)
        except Exception as e:  # noqa: BLE001 - a voice that cannot run here is reported
            print(f"{voice}: not measured ({e})")
            continue
        scores: dict[str, list] = {}
        lines = []
        for i, text in enumerate(SENTENCES):
            speech = tts.synthesize(text)
            wav = tmp / f"{voice}{i}.wav"
            wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
            duration = len(speech.audio) / speech.sample_rate
            lines.append((speech.phonemes, bake(wav, text=text).phonemes, duration))
        lag = lag_s(lines)  # Piper says its phones later than they sound; eSpeak does not
        for told, found, duration in lines:
            exact = [replace(p, start=p.start - lag, end=p.end - lag) for p in told]
            n = round(duration * 100)
            ref = labels(first_choice(exact), n)
            closures = [(p.start + p.end) / 2 for p in exact if p.ipa in "pbm"]
            for source, phones in (("exact", exact), ("aligned", found)):
                for name, cues in variants(phones, duration).items():
                    ours = labels(cues, n)
                    shut = [ours[min(int(t * 100), n - 1)] == "A" for t in closures]
                    scores.setdefault((name, source), []).append(
                        (np.sum(ours == ref), n, sum(shut), len(shut))
                    )
        print(f"{voice} ({len(SENTENCES)} lines; its phone times lag the sound by {lag * 1000:.0f} ms, "
              "the median against the aligner: removed)")  # fmt: skip
        print(f"{'cues':<40}{'exact phones':>14}{'closures':>10}{'aligned':>10}{'closures':>10}")
        for name in variants([], 1.0):
            row = f"{name:<40}"
            for source in ("exact", "aligned"):
                s = np.array(scores[name, source]).sum(axis=0)
                row += f"{s[0] / s[1] * 100:>13.1f}%{s[2] / s[3] * 100:>9.1f}%"
            print(row)


def lag_s(lines: list) -> float:
    """Median of (told start - aligned start) over phones matched in order by IPA."""
    diffs = []
    for told, found, _ in lines:
        a, b = [p.ipa for p in told], [p.ipa for p in found]
        for i, j, k in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
            diffs += [told[i + m].start - found[j + m].start for m in range(k)]
    return float(np.median(diffs))


def librivox_table() -> None:
    print("\n2. Against Rhubarb 1.13's own cues on the 356.6 s reading (per 10 ms)")
    expected = json.loads(
        (KITTENS / "threelittlekittens_01_rountreesmith-expected.json").read_text()
    )
    theirs_cues = [
        VisemeCue(c["value"], float(c["start"]), float(c["end"])) for c in expected["mouthCues"]
    ]
    duration = float(expected["metadata"]["duration"])
    n = round(duration * 100)
    theirs = labels(theirs_cues, n)
    script = (KITTENS / "threelittlekittens_01_rountreesmith.txt").read_text()
    phones = bake(READING, text=script).phonemes
    print(f"{'cues':<40}{'same shape':>11}{'A where Rhubarb A':>19}{'x realtime':>12}")
    for name, (cues, seconds) in variants(phones, duration, timed=True).items():
        ours = labels(cues, n)
        closed = theirs == "A"
        print(f"{name:<40}{np.mean(ours == theirs) * 100:>10.1f}%"
              f"{np.mean(ours[closed] == 'A') * 100:>18.1f}%{duration / seconds:>12.0f}")  # fmt: skip


def fidelity(binary: Path, tmp: Path) -> None:
    """Rhubarb's logged phones through our port against the shapes Rhubarb logged."""
    print("\n3. The port against Rhubarb itself, from Rhubarb's own phones (per 10 ms)")
    for audio in (READING, KITTENS / "en_male_electricity.ogg"):
        log = tmp / "rhubarb.log"
        wav = tmp / "in.wav"
        sound = load_audio(audio)
        wav.write_bytes(wav_bytes(sound.samples, sound.sample_rate))
        subprocess.run([str(binary), "--logFile", str(log), "--logLevel", "debug", "-q",
                        "-o", str(tmp / "out.tsv"), str(wav)], check=True, capture_output=True)  # fmt: skip
        text = log.read_text(errors="replace")
        event = re.compile(r"##(\w+)\[(\d+\.\d+)-(\d+\.\d+)\]: (\S+)")
        phones, shapes = [], []
        for kind, s, e, v in event.findall(text):
            if kind == "phone":
                phones.append((v, round(float(s) * 100), round(float(e) * 100)))
            elif kind == "shape":
                shapes.append((v, round(float(s) * 100), round(float(e) * 100)))
        phones.sort(key=lambda p: p[1])  # logged as each utterance finishes
        n = shapes[-1][2]
        track, rules = shape_rules(phones, ["X"] * len(phones), n, ALL_RULES)
        ours = np.array(avoid_static(track, rules, ALL_RULES).v)
        theirs = np.full(n, "X", dtype="<U1")
        for v, s, e in shapes:
            theirs[s:e] = v
        print(f"{audio.name}: {len(phones)} phones, {len(shapes)} shapes; same shape on "
              f"{np.mean(ours == theirs) * 100:.2f}% of {n} centiseconds")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--voices", nargs="*", default=["espeak", "piper"])
    ap.add_argument("--rhubarb", nargs="?", const=str(RHUBARB), metavar="BINARY")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.rhubarb:
            fidelity(Path(args.rhubarb), Path(tmp))
        tts_table(args.voices, Path(tmp))
        librivox_table()


if __name__ == "__main__":
    main()

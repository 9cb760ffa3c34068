"""Lip reading on the GRID clips, from the lips alone and, for the gap, from the sound.

    .venv/bin/python benchmarks/lipread_grid.py [--skip-audio]

Clips and scripts: ../shared/data/grid (videos, transcripts.tsv, align/*.align word times in
1/25000 s). Tasks, lips only (face.track -> mouth.track_mouth -> bridge_server.lipread.reader; the
sound is never decoded, which the script enforces by making audio loading raise):

- grammar: word accuracy of `read_grammar` with the GRID grammar (6 slots x 4 clips = 24);
- choose: sentence accuracy of `rank` among the 4 transcripts plus 20 other GRID sentences
  (seed 0), and the mean rank of the right one;
- timing: mean absolute error (ms) of word starts and ends from `time_script` with the true
  script, against the two .align files.

With the sound (the project's audio path): Whisper's transcript (`pipeline.bake(text=None)`)
scored per slot and used to choose the candidate nearest to it (word edit distance), and the
word times of `pipeline.bake(clip, text=script)` against the .align files. Chance: 1/24 for
choosing; per slot 1/4, 1/4, 1/4, 1/25, 1/10, 1/4 (about 4.6 of 24 words).
Also prints the temperature that best calibrates `rank`'s confidences on these clips.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge_server.evaluate.speech import edits  # noqa: E402
from bridge_server.lipread import reader as lipread  # noqa: E402

GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid"
DIGITS = "zero one two three four five six seven eight nine".split()
SEED, OTHERS = 0, 20


def transcripts() -> dict[Path, str]:
    rows = (GRID / "transcripts.tsv").read_text().splitlines()[1:]
    return {GRID / "videos" / r.split("\t")[0]: r.split("\t")[2] for r in rows if r.strip()}


def alignments() -> dict[str, list[tuple[str, float, float]]]:
    """Clip stem -> [(word, start s, end s)] without silences, for the clips that have one."""
    out = {}
    for path in (GRID / "align").glob("*.align"):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        code = path.stem.split("_")[-1]
        out[code] = [(w, int(a) / 25000, int(b) / 25000) for a, b, w in rows if w != "sil"]
    return out


def align_for(clip: Path, aligned: dict) -> list | None:
    return next((v for k, v in aligned.items() if clip.stem.endswith(k)), None)


def timing_error_ms(words, truth) -> float:
    """Mean absolute error of word starts and ends, in ms (words in script order)."""
    errors = [abs(w.start - a) for w, (_, a, _) in zip(words, truth)]
    errors += [abs(w.end - b) for w, (_, _, b) in zip(words, truth)]
    return 1000 * float(np.mean(errors))


def slot_hits(said: list[str], truth: list[str]) -> int:
    """Words of `truth` matched in `said` by a word-level edit alignment."""
    n, m = len(truth), len(said)
    best = np.zeros((n + 1, m + 1), int)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            hit = best[i - 1, j - 1] + (truth[i - 1] == said[j - 1])
            best[i, j] = max(hit, best[i - 1, j], best[i, j - 1])
    return int(best[n, m])


def words_of(text: str) -> list[str]:
    """Whisper's spelling -> GRID's words: lower case, no punctuation, digits spelled out."""
    text = re.sub(r"\d", lambda d: f" {DIGITS[int(d.group())]} ", text.lower())
    return re.findall(r"[a-z]+", text)


@contextlib.contextmanager
def no_sound():
    """Any attempt to decode a clip's sound fails loudly: the lips path must not need it."""

    def refuse(*_a, **_k):
        raise AssertionError("the lip-reading path tried to load the sound")

    with (
        mock.patch("bridge_server.media.audio.load_audio", refuse),
        mock.patch("bridge_server.pipeline.load_audio", refuse),
    ):
        yield


def lips(clips: dict[Path, str], choices: list[str], aligned: dict, grammar) -> dict:
    found = {"words": 0, "chosen": 0, "ranks": [], "timing": [], "costs": [], "seconds": 0.0}
    with no_sound():
        for clip, script in clips.items():
            started = time.monotonic()
            mouth = lipread.read_mouth(clip)
            best = lipread.read_grammar(mouth, grammar)[0]
            ranked = lipread.rank(mouth, choices)
            texts = [c.text for c in ranked]
            found["words"] += sum(a == b for a, b in zip(best.text.split(), script.split()))
            found["chosen"] += texts[0] == script
            found["ranks"].append(texts.index(script) + 1)
            found["costs"].append((np.array([c.cost for c in ranked]), texts.index(script)))
            truth = align_for(clip, aligned)
            if truth:
                found["timing"].append(
                    timing_error_ms(lipread.time_script(mouth, script).words, truth)
                )
            found["seconds"] += time.monotonic() - started
            print(f"  lips  {clip.stem}: grammar '{best.text}', rank {texts.index(script) + 1}",
                  file=sys.stderr)  # fmt: skip
    return found


def sound(clips: dict[Path, str], choices: list[str], aligned: dict) -> dict:
    from bridge_server.pipeline import bake

    found = {"words": 0, "chosen": 0, "ranks": [], "timing": [], "seconds": 0.0}
    for clip, script in clips.items():
        started = time.monotonic()
        heard = words_of(" ".join(w.text for w in bake(clip, text=None, lang="en").words))
        distance = [edits(words_of(c), heard) for c in choices]
        order = sorted(range(len(choices)), key=lambda i: distance[i])
        found["words"] += slot_hits(heard, script.split())
        found["chosen"] += choices[order[0]] == script
        found["ranks"].append(order.index(choices.index(script)) + 1)
        truth = align_for(clip, aligned)
        if truth:
            found["timing"].append(timing_error_ms(bake(clip, text=script).words, truth))
        found["seconds"] += time.monotonic() - started
        print(f"  sound {clip.stem}: heard '{' '.join(heard)}'", file=sys.stderr)
    return found


def calibrated_temperature(costs: list) -> float:
    """The softmax temperature that makes the right candidates most probable on average."""
    grid = np.geomspace(1e-3, 0.3, 60)

    def loss(t):
        return -np.mean([-(c[i] - c.min()) / t - np.log(np.exp(-(c - c.min()) / t).sum())
                         for c, i in costs])  # fmt: skip

    return float(grid[np.argmin([loss(t) for t in grid])])


def table(lip: dict, snd: dict | None, clips: int) -> str:
    def cell(d, key):
        if d is None:
            return "—"
        if key == "words":
            return f"{d['words']}/{6 * clips} ({d['words'] / (6 * clips):.0%})"
        if key == "chosen":
            return f"{d['chosen']}/{clips} (mean rank {np.mean(d['ranks']):.1f})"
        if key == "timing":
            return f"{np.mean(d['timing']):.0f} ms" if d["timing"] else "—"
        return f"{d['seconds'] / clips:.1f} s"

    rows = [
        ("GRID grammar, words right (chance ≈ 19%)", "words"),
        (f"choose among {OTHERS + clips} sentences (chance 1/{OTHERS + clips})", "chosen"),
        ("word boundary error with the true script (2 clips)", "timing"),
        ("time per clip", "seconds"),
    ]
    out = ["| task | lips only | with the sound |", "|---|---|---|"]
    out += [f"| {name} | {cell(lip, key)} | {cell(snd, key)} |" for name, key in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-audio", action="store_true", help="lips only")
    args = parser.parse_args()
    clips, aligned = transcripts(), alignments()
    grammar = lipread.load_grammar("grid")
    others = lipread.sample_sentences(grammar, OTHERS, SEED, tuple(clips.values()))
    choices = list(clips.values()) + others
    lip = lips(clips, choices, aligned, grammar)
    snd = None if args.skip_audio else sound(clips, choices, aligned)
    print(table(lip, snd, len(clips)))
    print(f"\nbest-calibrated temperature for rank's confidences: "
          f"{calibrated_temperature(lip['costs']):.3g} (data/lipread.json has "
          f"{lipread.settings()['temperature']:g})")  # fmt: skip


if __name__ == "__main__":
    main()

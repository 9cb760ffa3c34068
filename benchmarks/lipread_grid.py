"""Lip reading on the GRID clips, from the lips alone and, for the gap, from the sound.

    .venv/bin/python benchmarks/lipread_grid.py [--skip-audio] [--datasets NAME=DS ...]

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

With --datasets NAME=DS (folders `lipsync dataset build` wrote; their tracked mouths are read,
so the numbers are the reader's alone; NAME=DS@test keeps only the clips of the training
script's test split, for the speaker it trained on): the shipped model (models/lipreader.onnx) against the
template matcher with the GRID grammar, word and sentence accuracy and per slot; the model
given the sound's word spans (an upper bound: how much is lost finding the words on the lips
rather than telling them apart); speed, the model alone in frames per second and
`lipsync lipread --grammar grid` end to end (tracking included) in x realtime; and the lips'
activity against the sound's words, with what trimming to it gives `--script` timing and the
template matcher.
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

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "models"),
]

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


SLOTS = ("command", "colour", "preposition", "letter", "digit", "adverb")


def dataset_clips(ds: Path, limit: int | None = None) -> list[tuple[str, str, object, list]]:
    """(id, transcript, mouth, the sound's word spans in frames) of a built dataset."""
    import json

    from bridge_server.mouth.controls import CONTROLS, Mouth

    out = []
    for line in (ds / "manifest.jsonl").read_text().splitlines()[:limit]:
        row = json.loads(line)
        folder = ds / "clips" / row["id"]
        if not row.get("ok") or not (folder / "frames.npz").is_file():
            continue
        z = np.load(folder / "frames.npz")
        controls = {k: z["controls"][:, i] for i, k in enumerate(CONTROLS)}
        mouth = Mouth(z["times"], z["lips"], controls, z["valid"])
        words = json.loads((folder / "timeline.json").read_text())["words"]
        spans = [(int(np.searchsorted(z["times"], w["start"])),
                  int(np.searchsorted(z["times"], w["end"]))) for w in words]  # fmt: skip
        out.append((row["id"], row["transcript"].lower(), mouth, spans, words))
    return out


def activity_row(name: str, clips, model) -> str:
    """When the lips speak against the sound's words, and what trimming to it gives: script
    timing (word starts against the sound's alignment) and the template matcher's words."""
    from bridge_server.core.timeline import Word

    agree, lips_only, words_only, whole, trimmed, read = [], [], [], [], [], [0, 0, 0]
    grammar = lipread.load_grammar("grid")
    for _, text, mouth, _, words in clips:
        active = lipread.lip_activity(mouth, model)
        heard = [Word(w["text"], w["start"], w["end"]) for w in words]
        a, b = active.against(heard)
        lips_only.append(a)
        words_only.append(b)
        agree.append(1 - (a + b) / max(float(mouth.times[-1]), 1e-9))
        for speaking, errors in ((None, whole), (active, trimmed)):
            timed = lipread.time_script(mouth, text, speaking).words
            errors += [abs(t.start - w["start"]) * 1000 for t, w in zip(timed, words)]
        part, start = lipread.trimmed(mouth, active.spans)
        for i, m in enumerate((mouth, part)):
            said = lipread.read_grammar(m, grammar, 1)[0].text.split()
            read[i] += sum(x == y for x, y in zip(said, text.split()))
        read[2] += len(text.split())
    return (f"| {name} | {len(clips)} | {np.mean(agree):.1%} | {np.median(lips_only):.2f} / "
            f"{np.max(lips_only):.2f} | {np.median(words_only):.2f} / {np.max(words_only):.2f} | "
            f"{np.median(whole):.0f} / {np.mean(whole):.0f} | {np.median(trimmed):.0f} / "
            f"{np.mean(trimmed):.0f} | {read[0] / read[2]:.1%} | {read[1] / read[2]:.1%} |")  # fmt: skip


def model_rows(name: str, clips, grammar, model) -> list[str]:
    """Table rows: model, model on the sound's word spans, template matcher."""
    from bridge_server.lipread.model import features

    said = {"model": [], "model, the sound's word spans": [], "template matcher": []}
    run_s, frames = 0.0, 0
    for _, _, mouth, spans, _ in clips:
        began = time.perf_counter()
        lp = model.word_log_posteriors(features(mouth))
        run_s, frames = run_s + time.perf_counter() - began, frames + len(lp)
        read = lipread.read_by_model(mouth, model, slots=grammar, best=1)
        said["model"].append(read[0].text.split())
        cum = np.vstack([np.zeros((1, lp.shape[1])), np.cumsum(lp, axis=0)])
        given = []
        for slot, (a, b) in zip(grammar, spans):  # the word each span's frames favour
            scores = np.array(
                [
                    cum[max(b, a + 1), model.vocab.index(w)] - cum[a, model.vocab.index(w)]
                    for w in slot
                ]
            )
            given.append(slot[int(np.argmax(scores))])
        said["model, the sound's word spans"].append(given)
        said["template matcher"].append(lipread.read_grammar(mouth, grammar, 1)[0].text.split())
    rows = []
    for method, readings in said.items():
        truth = [c[1].split() for c in clips]
        hits = np.array(
            [[a == b for a, b in zip(r + [""] * 6, t)] for r, t in zip(readings, truth)]
        )
        slots = " | ".join(f"{h:.0%}" for h in hits.mean(axis=0))
        rows.append(f"| {name} | {method} | {len(clips)} | {hits.mean():.1%} | "
                    f"{hits.all(axis=1).mean():.1%} | {slots} |")  # fmt: skip
    rows.append(
        f"| {name} | model alone: {frames / max(run_s, 1e-9):,.0f} frames/s "
        f"({frames / 25 / max(run_s, 1e-9):,.0f}x realtime at 25 fps) | | | | |||||| |"
    )
    return rows


def end_to_end(video: Path) -> str:
    """`lipsync lipread VIDEO --grammar grid` (tracking included) as x realtime."""
    import subprocess

    from bridge_server.media.video import probe

    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bridge_server.cli", "lipread", str(video),
                           "--grammar", "grid", "-q"], capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - began
    if done.returncode:
        return f"failed: {done.stderr[-300:]}"
    return (
        f"{probe(video).duration / seconds:.2f}x realtime ({seconds:.1f} s, process start included)"
    )


def _split_of(clip_id: str) -> str:
    """models/train_lipreader.py's fixed split of a clip (train, validation or test)."""
    import train_lipreader  # models/ (on the path below); torch only when a split is asked for

    return train_lipreader.split_of(clip_id)


def datasets_report(named: list[str]) -> None:
    from bridge_server.lipread.model import LipReaderModel

    model = LipReaderModel.shipped()
    grammar = lipread.load_grammar("grid")
    activity = []
    print("| set | reader | clips | words | sentences | " + " | ".join(SLOTS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(SLOTS))
    for item in named:
        name, ds = item.split("=", 1)
        clips = dataset_clips(Path(ds.removesuffix("@test")).expanduser())
        if ds.endswith("@test"):  # the seen speaker: only the sentences training never saw
            clips = [c for c in clips if _split_of(c[0]) == "test"]
        for row in model_rows(name, clips, grammar, model):
            print(row, flush=True)
        activity.append(activity_row(name, clips, model))
    print("\nWhen the lips speak (the model's activity, threshold 0.5) against the sound's words:")
    print("the share of the clip where they agree, seconds of lips speaking with no word and of")
    print("words with the lips at rest (median / max); `--script` timing's word-start error (ms,")
    print("median / mean) over the whole clip and trimmed to where the lips speak; the template")
    print("matcher's GRID words on the whole clip and trimmed:\n")
    print("| set | clips | agree | lips only s | words only s | script timing, whole | trimmed "
          "| template words, whole | trimmed |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    print("\n".join(activity))
    print(
        f"\nend to end on {GRID / 'videos' / 'lbax4n.mpg'}: {end_to_end(GRID / 'videos' / 'lbax4n.mpg')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-audio", action="store_true", help="lips only")
    parser.add_argument("--datasets", nargs="*", metavar="NAME=DS", help="model vs template")
    args = parser.parse_args()
    if args.datasets:
        datasets_report(args.datasets)
        return
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

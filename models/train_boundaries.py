"""Train the boundary model: where, within +-50 ms of an aligned phone boundary, the sound puts it.

    .venv/bin/python models/train_boundaries.py --out models/boundaries.onnx
        [--clips 1500] [--others 400] [--epochs 12] [--sure 0.25] [--seed 0]
        [--grid ALIGN_DIR AUDIO_DS] [--piper] [--piper-train N] [--foreign N] [--band-masks N]
        [--labelled DIR ... [--labelled-copies 10]]

Speech with exact phone times (models/exact_speech.py): eSpeak NG says random lines of
dictionary words in five English accents and five voice variants, and Flite's rms, awb and
kal16 voices say 400 lines each (needs Debian's festival, festvox-kallpc16k, festvox-kdlpc16k,
festvox-us-slt-hts and flite). The synthesisers' own phone events are the truth, with two
corrections: eSpeak starts a stop at its burst, and people (TIMIT, and the hand-labelled speech
we are judged on) start it where the lips or tongue close, so a stop's start moves back to the
start of the silence before its burst; and a Festival or Flite voice's lag (its phones against
the aligner's, the median) is removed. Augmentation teaches the acoustics, not the synthesiser:
speed +-10%, noise at 5-30 dB SNR, room reverberation, telephone band, gain; and every line
gets a noise floor 40-70 dB down (synthesisers' pauses and closures are digital silence, a cue
real speech never gives: GRID s1 56.5 -> 55.0% within 20 ms with it, 52.0% without). Each line is aligned
by the project's own aligner (`recognize` with the script), and every aligned boundary paired
with its true one (phones matched in order by broad class) is a training example
(bridge_server.speech.refine defines the inputs). Held out, never trained on: two eSpeak accents
with two other variants, Festival's ked diphones (a speaker no training voice has, his recorded
diphones) and the slt voices of Flite and Festival (HTS), each clean and degraded; Piper's
neural voice (its lag measured and removed first) and GRID s1's word alignments on real speech
(forced alignments: a check, not the truth). The card reports each, before and after, within
10/20/25 ms and per phone class. `--labelled DIR ...` trains on speech labelled by people too
(TIMIT's .phn/.wrd or TextGrids beside their .wav): what the synthesisers cannot teach, where
people hear the edges (models/boundaries.md: on real speech the model moves a boundary that is
20-50 ms off the right way about half the time).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from bridge_server.core.timeline import Phoneme, Timeline  # noqa: E402
from bridge_server.evaluate.references import labelled_utterances  # noqa: E402
from bridge_server.evaluate.scores import phone_pairs  # noqa: E402
from bridge_server.media.audio import Audio, load_audio, wav_bytes  # noqa: E402
from bridge_server.media.mel import MELS  # noqa: E402
from bridge_server.speech import refine as R  # noqa: E402
from bridge_server.speech.recognize import _from_script  # noqa: E402  (the script's path only)
from models.exact_speech import (  # noqa: E402
    FOREIGN,
    HELD_ACCENTS,
    HELD_OTHERS,
    HELD_VARIANTS,
    TRAIN_ACCENTS,
    TRAIN_OTHERS,
    TRAIN_VARIANTS,
    degrade,
    dictionary_words,
    lag,
    lines,
    noise_floor,
    pairs,
    scaled,
    synthesize_lines,
)


def examples(audio: Audio, text: str, truth: list[Phoneme]) -> dict:
    """The model's inputs and targets for one line (boundaries within reach of their truth)."""
    found = _from_script(audio, text, lambda *_: None)
    return paired(audio, pairs(truth, found.phonemes) if found else [])


def paired(audio: Audio, got: list) -> dict:
    """Examples of aligned boundaries, each with its true time: (boundary, time) pairs."""
    if not got:
        return {}
    return seen_from(audio, [b for b, _ in got], np.array([t - b.time for b, t in got]), 0.0)


def seen_from(audio: Audio, bds: list, offset: np.ndarray, error) -> dict:
    """Training examples: the model's inputs at each boundary's time less `error` (where the
    aligner put it, for a boundary given at its true time; 0 for an aligned one), and
    `offset`, the true time less that."""
    times = np.array([b.time for b in bds]) - error
    return {
        "mel": R.windows(R.features(audio), times).astype(np.float16),
        "classes": R.class_inputs(bds),
        "offset": np.asarray(offset, np.float32),
        "right": np.array([b.right for b in bds]),
    }


def jittered(audio: Audio, truth: list[Phoneme], errors: dict, rng) -> dict:
    """Examples for a voice the aligner cannot follow: each exact boundary seen from where the
    aligner might have put it, an error drawn from its errors at the same kind of edge
    (`aligner_errors`)."""
    bds = R.boundaries(truth)
    if not bds:
        return {}
    offset = np.array([rng.choice(errors.get((b.left, b.right), errors[b.right])) for b in bds])
    return seen_from(audio, bds, offset, offset)


def labelled(folders: list[Path], copies: int, rng, cache: Path | None) -> dict:
    """Examples from speech labelled by people (`labelled_utterances`: TIMIT .phn/.wrd or
    TextGrids): each aligned boundary that `lipsync evaluate` pairs with a labelled one, offset
    to it; every utterance as it is and in `copies` degraded copies, each aligned afresh."""
    if cache and cache.is_file():
        return dict(np.load(cache))
    parts = []
    for folder in folders:
        for sound, ref in labelled_utterances(folder):
            clean = load_audio(sound)
            for copy in range(copies + 1):
                audio, scale = clean, 1.0
                if copy:
                    x, scale = degrade(clean.samples, clean.sample_rate, rng)
                    audio = load_audio(wav_bytes(x, clean.sample_rate))
                if ex := paired(audio, labelled_pairs(audio, ref, scale)):
                    parts.append(ex | {"voice": np.full(len(ex["offset"]), -1),
                                       "copy": np.full(len(ex["offset"]), copy)})  # fmt: skip
    if not parts:
        raise SystemExit(f"no labelled utterances (.wav with .phn/.wrd or TextGrid) in {folders}")
    data = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if cache:
        np.savez(cache, **data)
    return data


def labelled_pairs(audio: Audio, ref, scale: float) -> list:
    """(aligned boundary, labelled time) in `audio`, the labelled sound `scale` times as long:
    the pairs `lipsync evaluate` makes, on the labels' clock."""
    found = _from_script(audio, " ".join(w.label for w in ref.words), lambda *_: None)
    if not found:
        return []
    unscaled = [replace(p, start=p.start / scale, end=p.end / scale) for p in found.phonemes]
    _, _, _, bounds = phone_pairs(Timeline(audio.duration / scale, 0.0, "", phonemes=unscaled), ref)
    theirs = {round(ours, 6): t for t, ours in bounds.items()}
    keys = [(b, round(b.time / scale, 6)) for b in R.boundaries(found.phonemes)]
    return [(b, theirs[k] * scale) for b, k in keys if k in theirs]


def aligner_errors(data: dict) -> dict:
    """The aligner's errors (true - aligned time) on the English voices, by the classes on
    both sides of the edge where there are enough, and by the class after it."""
    left, right = data["classes"][:, : len(R.CLASSES)].argmax(1), data["right"]
    keep = np.abs(data["offset"]) <= (R.REACH + 2) * R.HOP_S
    out = {}
    for c in range(len(R.CLASSES)):
        out[c] = data["offset"][keep & (right == c)]
        for a in range(len(R.CLASSES)):
            both = data["offset"][keep & (right == c) & (left == a)]
            if len(both) >= 50:
                out[a, c] = both
    return out


def build(voices: list[str], texts: list[str], rng, degraded: float, cache: Path | None,
          errors: dict | None = None, floor=None) -> dict:  # fmt: skip
    """Examples of the lines, said in turn by the voices; a share `degraded` of them degraded.
    Festival's and Flite's phone times are shifted by the voice's lag (`lag`). With `errors`,
    the boundaries are `jittered`, not aligned (voices the aligner cannot follow; lag not
    measurable, taken as none). With `floor` (a generator), every line gets a `noise_floor`."""
    if cache and cache.is_file():
        return dict(np.load(cache))
    parts = []
    t0 = time.time()
    for v, voice in enumerate(voices):
        mine = texts[v :: len(voices)]
        said = synthesize_lines(voice, mine)
        shift = lag([(load_audio(wav_bytes(a, r)), t, p) for (a, r, p), t in zip(said[:40], mine)]
                    ) if ":" in voice and errors is None else 0.0  # fmt: skip
        for (audio, rate, truth), text in zip(said, mine):
            if not truth:  # a line the voice could not say
                continue
            scale = 1.0
            if rng.random() < degraded:
                audio, scale = degrade(audio, rate, rng)
            if floor is not None:
                audio = noise_floor(audio, floor)
            truth = scaled(
                [Phoneme(p.ipa, p.start - shift, p.end - shift, p.word) for p in truth], scale
            )
            sound = load_audio(wav_bytes(audio, rate))
            ex = jittered(sound, truth, errors, rng) if errors else examples(sound, text, truth)
            if ex:
                parts.append(ex | {"voice": np.full(len(ex["offset"]), v)})
        print(f"  {voice}: {len(said)} lines (lag {shift * 1000:.1f} ms), {time.time() - t0:.0f} s",
              flush=True)  # fmt: skip
    data = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if cache:
        np.savez(cache, **data)
    return data


# --- the model ------------------------------------------------------------------------------


class Net(nn.Module):
    """Dilated convolutions over the hops (each candidate sees about +-70 ms), told the classes
    of the phones on either side; one score per candidate position."""

    def __init__(self, width: int = 64):
        super().__init__()
        c = 2 * len(R.CLASSES)
        self.body = nn.Sequential(
            nn.Conv1d(MELS + c, width, 5, padding=2), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=4, dilation=2), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=8, dilation=4), nn.ReLU(),
            nn.Conv1d(width, 1, 1),
        )  # fmt: skip

    def forward(self, mel, classes):
        hops = mel.shape[1]
        x = torch.cat([mel.transpose(1, 2), classes[:, :, None].expand(-1, -1, hops)], 1)
        return self.body(x)[:, 0, R.HALF - R.REACH : R.HALF + R.REACH + 1]


def targets(offset: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(offset / R.HOP_S), -R.REACH, R.REACH).astype(int) + R.REACH


def masked_bands(m: torch.Tensor, masks: int, gen) -> torch.Tensor:
    """m (B, hops, MELS) with `masks` random runs of up to 8 bands each set to the mean (0):
    the model has to find each edge by more than one part of the spectrum."""
    bands = torch.arange(MELS)
    for _ in range(masks):
        first = torch.randint(0, MELS, (len(m), 1), generator=gen)
        width = torch.randint(0, 9, (len(m), 1), generator=gen)
        m = m.masked_fill(((bands >= first) & (bands < first + width))[:, None, :], 0.0)
    return m


def train(data: dict, epochs: int, seed: int, masks: int = 0) -> Net:
    torch.manual_seed(seed)
    keep = np.abs(data["offset"]) <= (R.REACH + 2) * R.HOP_S  # farther: a mismatched pair
    mel = torch.tensor(data["mel"][keep].astype(np.float32))
    cls = torch.tensor(data["classes"][keep])
    y = torch.tensor(targets(data["offset"][keep]))
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(y), 256):
            idx = order[i : i + 256]
            m = mel[idx] + 0.1 * torch.randn(len(idx), *mel.shape[1:], generator=gen)
            m = masked_bands(m, masks, gen) if masks else m
            loss = nn.functional.cross_entropy(net(m, cls[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(y):.3f}", flush=True)
    return net.eval()


def export(net: Net, path: Path, meta: dict) -> None:
    import onnx

    mel = torch.zeros(1, 2 * R.HALF + 1, MELS)
    cls = torch.zeros(1, 2 * len(R.CLASSES))
    torch.onnx.export(net, (mel, cls), str(path), input_names=["mel", "classes"],
                      output_names=["logits"], dynamic_axes={"mel": {0: "b"}, "classes": {0: "b"},
                      "logits": {0: "b"}}, opset_version=17, dynamo=False)  # fmt: skip
    model = onnx.load(str(path))
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))


# --- measuring --------------------------------------------------------------------------------


def scores(errors_ms: np.ndarray) -> dict:
    e = np.abs(errors_ms)
    return {f"within_{t}ms": float(np.mean(e <= t) * 100) for t in (10, 20, 25)} | {
        "mean_ms": float(e.mean()), "n": int(len(e))
    }  # fmt: skip


def compare(data: dict, model: R.BoundaryModel) -> dict:
    """Before and after on examples: all, and per class of the phone after the boundary."""
    shift, sure = model.offsets(data["mel"].astype(np.float32), data["classes"])
    moved = np.where(sure >= model.sure, shift, 0.0)
    before, after = data["offset"] * 1000, (data["offset"] - moved) * 1000
    out = {"all": {"before": scores(before), "after": scores(after)}}
    for c, name in enumerate(R.CLASSES):
        sel = data["right"] == c
        if sel.sum() >= 20:
            out[name] = {"before": scores(before[sel]), "after": scores(after[sel])}
    return out


def grid_clips(align_dir: Path, ds: Path, skip: int, n: int):
    """(sound, aligned words and phonemes, GRID's word times) of GRID clips after the first
    `skip` (in the manifest's order), up to n."""
    manifest = [json.loads(line) for line in (ds / "manifest.jsonl").read_text().splitlines()]
    done = 0
    for item in manifest[skip:]:
        clip, text = item["id"], item.get("transcript")
        align = align_dir / f"{clip}.align"
        sound = ds / "clips" / clip / "audio.wav"
        if not (align.is_file() and text and sound.is_file()) or done >= n:
            continue
        ref = [line.split() for line in align.read_text().splitlines()]
        ref = [(int(a) / 25000, int(b) / 25000) for a, b, w in ref if w != "sil"]
        audio = load_audio(sound)
        found = _from_script(audio, text, lambda *_: None)
        if not found or len(found.words) != len(ref):
            continue
        done += 1
        yield audio, found, ref


def grid_examples(align_dir: Path, ds: Path, n: int, cache: Path | None) -> dict:
    """Word-edge boundaries of the first n GRID clips with GRID's times (real speech)."""
    if cache and cache.is_file():
        return dict(np.load(cache))
    parts = []
    for audio, found, ref in grid_clips(align_dir, ds, 0, n):
        first = {
            min(i for i, p in enumerate(found.phonemes) if p.word == k): k for k in range(len(ref))
        }
        last = {
            max(i for i, p in enumerate(found.phonemes) if p.word == k): k for k in range(len(ref))
        }
        got = [(b, ref[first[b.before]][0]) if b.before in first else (b, ref[last[b.after]][1])
               for b in R.boundaries(found.phonemes)
               if b.before in first or (b.before < 0 and b.after in last)]  # fmt: skip
        if ex := paired(audio, got):
            parts.append(ex)
    data = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if cache:
        np.savez(cache, **data)
    return data


def grid_words(align_dir: Path, ds: Path, model: R.BoundaryModel, skip: int, n: int) -> dict:
    """Word starts and ends on real speech (GRID s1) against GRID's own alignments."""
    before, after = [], []
    done = 0
    for audio, found, ref in grid_clips(align_dir, ds, skip, n):
        _, words = R.refine(audio, found.phonemes, found.words, model)
        for ws, out in ((found.words, before), (words, after)):
            out += [(t - u) * 1000 for w, r in zip(ws, ref) for t, u in zip((w.start, w.end), r)]
        done += 1
    return {"clips": done, "before": scores(np.array(before)), "after": scores(np.array(after))}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "boundaries.onnx")
    ap.add_argument("--clips", type=int, default=1500)
    ap.add_argument("--test-clips", type=int, default=120)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, help="folder to keep the built examples in")
    ap.add_argument("--grid", nargs=2, type=Path, metavar=("ALIGN_DIR", "DATASET"))
    ap.add_argument("--piper", action="store_true", help="also measure on Piper's voice")
    ap.add_argument(
        "--grid-train",
        type=int,
        default=0,
        metavar="N",
        help="also train on the word edges of the first N GRID clips (real speech)",
    )
    ap.add_argument("--piper-train", type=int, default=0, metavar="N",
                    help="lines of Piper's joe to train on (its lag removed)")  # fmt: skip
    ap.add_argument("--labelled", nargs="+", type=Path, default=[], metavar="DIR",
                    help="also train on speech labelled by people (TIMIT .phn/.wrd or TextGrids "
                    "beside their .wav)")  # fmt: skip
    ap.add_argument("--labelled-copies", type=int, default=10, metavar="N",
                    help="degraded copies of each labelled utterance")  # fmt: skip
    ap.add_argument("--foreign", type=int, default=0, metavar="N",
                    help="lines per foreign Festival voice to train on (exact_speech.FOREIGN)")  # fmt: skip
    ap.add_argument("--others", type=int, default=400, help="lines per Festival/Flite voice")
    ap.add_argument("--band-masks", type=int, default=0, metavar="N",
                    help="runs of up to 8 mel bands masked in each training example")  # fmt: skip
    ap.add_argument("--sure", type=float, default=0.25,
                    help="move a boundary only where the model's top probability reaches this")  # fmt: skip
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    words = dictionary_words()
    cache = args.cache
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    espeak = [a + v for a in TRAIN_ACCENTS for v in TRAIN_VARIANTS]
    held = [a + v for a in HELD_ACCENTS for v in HELD_VARIANTS]
    t0 = time.time()
    print(f"building {args.clips} eSpeak lines ({len(espeak)} voices) and {args.others} lines "
          f"of each of {', '.join(TRAIN_OTHERS)}")  # fmt: skip
    floor = np.random.default_rng(args.seed + 3)  # its own: the held-out sets stay the card's
    parts = [
        build(espeak, lines(args.clips, rng, words), rng, 0.65,
              cache and cache / "train_floor.npz", floor=floor),
        build(list(TRAIN_OTHERS), lines(args.others * len(TRAIN_OTHERS), rng, words), rng, 0.65,
              cache and cache / "train_others_floor.npz", floor=floor),
    ]  # fmt: skip
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = args.test_clips
    tests = {
        "held-out eSpeak voices, clean": build(held, lines(n, rng, words), rng, 0.0,
                                               cache and cache / "held_clean.npz"),
        "held-out eSpeak voices, degraded": build(held, lines(n, rng, words), rng, 1.0,
                                                  cache and cache / "held_degraded.npz"),
    }  # fmt: skip
    for voice in HELD_OTHERS:
        for kind, share in (("clean", 0.0), ("degraded", 1.0)):
            tests[f"{voice} (held out), {kind}"] = build(
                [voice],
                lines(n // 2, rng, words),
                rng,
                share,
                cache and cache / f"{voice.replace(':', '_')}_{kind}.npz",
            )
    if args.foreign:  # its own generator: the sets above stay those of the card
        frng = np.random.default_rng(args.seed + 2)
        said = build(list(FOREIGN), lines(args.foreign * len(FOREIGN), frng, words), frng, 0.65,
                     cache and cache / f"foreign{args.foreign}.npz", aligner_errors(data))  # fmt: skip
        data = {k: np.concatenate([data[k], said[k]]) for k in data}
    if args.piper_train:  # its own generator: the sets above stay those of the card
        said = build(["piper:joe"], lines(args.piper_train, np.random.default_rng(args.seed + 1),
                     words), rng, 0.65, cache and cache / f"piper{args.piper_train}.npz")  # fmt: skip
        data = {k: np.concatenate([data[k], said[k]]) for k in data}
    if args.labelled:  # its own generator: the sets above stay those of the card
        real = labelled(args.labelled, args.labelled_copies, np.random.default_rng(args.seed + 4),
                        cache and cache / "labelled_{}_{}.npz".format(
                            "_".join(f.name for f in args.labelled), args.labelled_copies))  # fmt: skip
        data = {k: np.concatenate([data[k], real[k]]) for k in data}
    if args.grid and args.grid_train:
        real = grid_examples(
            *args.grid, args.grid_train, cache and cache / f"grid{args.grid_train}.npz"
        )
        data = {k: np.concatenate([data[k], real[k]]) for k in real} if data else real
    print(f"built in {time.time() - t0:.0f} s: {len(data['offset'])} training boundaries")
    net = train(data, args.epochs, args.seed, args.band_masks)
    meta = {"features_version": R.FEATURES_VERSION, "sure": json.dumps(args.sure),
            "trained": datetime.date.today().isoformat(), "training_boundaries": str(len(data["offset"]))}  # fmt: skip
    export(net, args.out, meta)
    model = R.BoundaryModel.load(args.out)
    report = {name: compare(d, model) for name, d in tests.items()}
    if args.piper:
        piper = build(["piper:joe"], lines(args.test_clips // 2, rng, words), rng, 0.0,
                      cache and cache / "piper_test.npz")  # its lag removed  # fmt: skip
        report["Piper joe, unseen lines (its lag removed)"] = compare(piper, model)
    if args.grid:
        name = f"GRID s1 words (real speech; clips after the first {args.grid_train})"
        report[name] = grid_words(*args.grid, model, args.grid_train, 200)
    print(json.dumps(report, indent=1))
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Train the lip reader: mouth controls per video frame -> oculus15 visemes, exported to ONNX.

    .venv/bin/python models/train_lipreader.py ds/ --out models/lipreader.onnx [--epochs N]
        [--holdout SPEAKER|CLIP ...] [--seed S] [--distractors N]

ds/ is what `lipsync dataset build videos/ --out ds/ --transcripts transcripts.tsv` writes
(bridge_server.dataset): manifest.jsonl (one clip per line: id, speaker, transcript, ok) and
clips/<id>/frames.npz (times, controls (N, 10) in mouth.CONTROLS order, valid, visemes: the
oculus15 class the sound's alignment gives each frame, lips, and the names of both).

The model: features from bridge_server.lipread.model.features (the ONE definition the run
time uses too), a temporal convolution (5 frames), a 1-layer bidirectional GRU and a linear
layer to 15 classes; about 17k parameters. Loss: framewise cross-entropy on valid frames. The
targets are already aligned in time (the sound's forced alignment), so CTC would throw that
timing away and would have to learn alignment from a handful of clips; the sentence-level
question ("which of these lines?") is answered by time warping at run time instead.

Evaluation: with --holdout, those clips (by id or speaker) are the test set and the exported
model never sees them; without it, leave-one-clip-out (up to 30 clips) or leave-one-speaker-out,
and the exported model trains on everything. Reported: framewise accuracy against the majority
class and the hand-made prototypes (mouth.viseme_weights_from_controls), and the rank of each
held-out clip's transcript among the dataset's transcripts plus `--distractors` GRID sentences.
The model card (the ONNX path with .md) holds the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from bridge_server.lipread.model import (  # noqa: E402
    FEATURES_VERSION,
    N_FEATURES,
    SILENCE,
    VISEME_SET,
    VISEMES,
    features,
    rank_posteriors,
)

# --- data ---------------------------------------------------------------------------------


@dataclass
class Clip:
    """One clip of the dataset: per-frame controls and the viseme heard at each frame."""

    id: str
    speaker: str
    transcript: str
    times: np.ndarray  # (N,) seconds
    controls: np.ndarray  # (N, 10) mouth.CONTROLS order
    valid: np.ndarray  # (N,) bool
    visemes: np.ndarray  # (N,) int index into VISEMES

    @property
    def fps(self) -> float:
        return 1.0 / float(np.median(np.diff(self.times))) if len(self.times) > 1 else 25.0


def load_dataset(ds: str | Path) -> list[Clip]:
    """Every usable clip of a dataset folder (manifest.jsonl + clips/<id>/frames.npz)."""
    ds = Path(ds)
    manifest = ds / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found; build it with `lipsync dataset build` first")
    clips = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if not row.get("ok", True):
            continue
        frames = ds / "clips" / row["id"] / "frames.npz"
        if not frames.is_file():
            continue
        with np.load(frames) as z:
            _check_names(frames, z)
            clips.append(
                Clip(
                    str(row["id"]),
                    str(row.get("speaker") or "unknown"),
                    str(row.get("transcript") or ""),
                    np.asarray(z["times"], float),
                    np.asarray(z["controls"], float),
                    np.asarray(z["valid"], bool),
                    np.asarray(z["visemes"], np.int64),
                )
            )
    if not clips:
        raise SystemExit(f"{ds} holds no usable clip (ok with frames.npz)")
    return clips


def _check_names(path: Path, arrays) -> None:
    """The arrays' column and class names, when stored, must be the ones this code uses."""
    from bridge_server.mouth.controls import CONTROLS

    for key, expected in (("control_names", CONTROLS), ("viseme_names", VISEMES)):
        if key in arrays and tuple(str(n) for n in arrays[key]) != tuple(expected):
            raise SystemExit(f"{path}: {key} {list(arrays[key])} differ from {list(expected)}")


def clip_features(clip: Clip) -> np.ndarray:
    return features(clip.controls, clip.valid)


# --- model --------------------------------------------------------------------------------


class LipReaderNet(nn.Module):
    """(B, T, F) features -> (B, T, 15) logits: conv over 5 frames, bi-GRU, linear."""

    def __init__(self, n_features: int = N_FEATURES, width: int = 32, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Conv1d(n_features, width, kernel_size=5, padding=2)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * width, len(VISEMES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        h, _ = self.gru(self.drop(h))
        return self.out(self.drop(h))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def deterministic(seed: int):
    """Seeded, single-threaded, deterministic torch inside; the caller's settings after."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield np.random.default_rng(seed)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


def _batch(clips: list[Clip]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded features (B, T, F), targets (B, T) and loss mask (B, T) of the valid frames."""
    t = max(len(c.times) for c in clips)
    x = np.zeros((len(clips), t, N_FEATURES), np.float32)
    y = np.zeros((len(clips), t), np.int64)
    mask = np.zeros((len(clips), t), bool)
    for i, c in enumerate(clips):
        n = len(c.times)
        x[i, :n], y[i, :n], mask[i, :n] = clip_features(c), c.visemes, c.valid
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)


def train(
    clips: list[Clip], epochs: int = 300, seed: int = 0, lr: float = 3e-3, noise: float = 0.1
) -> LipReaderNet:
    """A model fitted on `clips` (all of them in every step), framewise cross-entropy on valid
    frames, Gaussian feature noise as augmentation. Same clips + seed = same weights."""
    with deterministic(seed) as rng:
        model = LipReaderNet()
        x, y, mask = _batch(clips)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
        loss_fn = nn.CrossEntropyLoss(reduction="none")
        model.train()
        for _ in range(epochs):
            jitter = torch.from_numpy(rng.normal(0.0, noise, x.shape).astype(np.float32))
            logits = model(x + jitter)
            loss = (loss_fn(logits.transpose(1, 2), y) * mask).sum() / mask.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        model.eval()
    return model


def torch_logits(model: LipReaderNet, feats: np.ndarray) -> np.ndarray:
    """(T, 15) logits of one clip's (T, F) features."""
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(feats, np.float32))[None])[0].numpy()


def export_onnx(model: LipReaderNet, path: str | Path, metadata: dict[str, str]) -> Path:
    """ONNX with input "features" (1, T, F) and output "logits" (1, T, 15), T dynamic;
    `metadata` (plus classes and features_version) goes into the file's metadata_props."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    dummy = torch.zeros(1, 16, N_FEATURES)
    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings():  # the legacy exporter's notices (no onnxscript here)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=["features"],
            output_names=["logits"],
            dynamic_axes={"features": {1: "frames"}, "logits": {1: "frames"}},
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    meta = {"classes": json.dumps(VISEMES), "features_version": FEATURES_VERSION, **metadata}
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)  # all or nothing
    return path


# --- evaluation ---------------------------------------------------------------------------


def prototype_classes(clip: Clip) -> np.ndarray:
    """The hand-made baseline: argmax of mouth.viseme_weights_from_controls per frame."""
    return prototype_posteriors(clip).argmax(axis=1)


def prototype_posteriors(clip: Clip) -> np.ndarray:
    from bridge_server.core.visemes import load_set
    from bridge_server.mouth.controls import CONTROLS, viseme_weights_from_controls

    controls = {k: np.nan_to_num(clip.controls[:, i]) for i, k in enumerate(CONTROLS)}
    w = viseme_weights_from_controls(controls, load_set(VISEME_SET))
    return np.clip(np.stack([w[v] for v in VISEMES], axis=1), 0.0, 1.0)


def splits(clips: list[Clip], holdout: list[str]) -> list[tuple[str, list[int], list[int]]]:
    """(name, train indices, test indices) per fold."""
    idx = list(range(len(clips)))
    if holdout:
        test = [i for i in idx if clips[i].id in holdout or clips[i].speaker in holdout]
        if not test:
            raise SystemExit(f"--holdout {' '.join(holdout)} matches no clip id or speaker")
        if len(test) == len(idx):
            raise SystemExit("--holdout leaves nothing to train on")
        return [("holdout " + " ".join(holdout), [i for i in idx if i not in test], test)]
    speakers = sorted({c.speaker for c in clips})
    if len(clips) <= 30 or len(speakers) < 3:
        return [(f"clip {clips[i].id}", [j for j in idx if j != i], [i]) for i in idx]
    return [
        (
            f"speaker {s}",
            [i for i in idx if clips[i].speaker != s],
            [i for i in idx if clips[i].speaker == s],
        )
        for s in speakers
    ]


def distractors_for(transcripts: list[str], n: int, seed: int) -> list[str]:
    """n random sentences of the GRID grammar (bridge_server/data/grammars/grid.json), none of
    `transcripts`: the same draw benchmarks/lipread_grid.py makes with seed 0."""
    if n <= 0:
        return []
    from bridge_server.lipread.reader import load_grammar, sample_sentences

    return sample_sentences(load_grammar("grid"), n, seed, tuple(transcripts))


def template_rank(clip: Clip, choices: list[str]) -> list[str]:
    """The closed-vocabulary scorer without training (bridge_server.lipread.reader.rank: DTW of the
    controls against the prototypes' expected controls), best first."""
    from bridge_server.lipread.reader import rank
    from bridge_server.mouth.controls import CONTROLS, Mouth

    controls = {k: clip.controls[:, i] for i, k in enumerate(CONTROLS)}
    mouth = Mouth(clip.times, np.zeros((len(clip.times), 40, 3)), controls, clip.valid)
    return [c.text for c in rank(mouth, choices)]


@dataclass
class Scores:
    frames: int = 0
    speech_frames: int = 0
    hits: dict[str, int] | None = None
    speech_hits: dict[str, int] | None = None

    def add(self, name: str, truth: np.ndarray, pred: np.ndarray) -> None:
        self.hits = self.hits or {}
        self.speech_hits = self.speech_hits or {}
        speech = truth != SILENCE
        self.hits[name] = self.hits.get(name, 0) + int((pred == truth).sum())
        self.speech_hits[name] = self.speech_hits.get(name, 0) + int((pred == truth)[speech].sum())

    def table(self) -> list[tuple[str, float, float]]:
        return [
            (k, v / max(self.frames, 1), (self.speech_hits or {})[k] / max(self.speech_frames, 1))
            for k, v in (self.hits or {}).items()
        ]


def evaluate(clips: list[Clip], holdout: list[str], epochs: int, seed: int, distractors: int):
    """Framewise accuracies of model and baselines on every fold's held-out frames, and the
    rank of each held-out transcript among the candidates (model and prototype posteriors)."""
    scores = Scores()
    transcripts = list(dict.fromkeys(c.transcript for c in clips if c.transcript))
    choices = transcripts + distractors_for(transcripts, distractors, seed)
    ranks = []
    for name, tr, te in splits(clips, holdout):
        model = train([clips[i] for i in tr], epochs=epochs, seed=seed)
        majority = np.bincount(
            np.concatenate([clips[i].visemes[clips[i].valid] for i in tr]), minlength=len(VISEMES)
        ).argmax()
        for i in te:
            c = clips[i]
            ok = c.valid
            truth = c.visemes[ok]
            logits = torch_logits(model, clip_features(c))
            scores.frames += len(truth)
            scores.speech_frames += int((truth != SILENCE).sum())
            scores.add("model", truth, logits.argmax(axis=1)[ok])
            scores.add("majority class", truth, np.full(len(truth), majority))
            scores.add("prototypes", truth, prototype_classes(c)[ok])
            if c.transcript and choices:
                post = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
                row = {"fold": name, "clip": c.id, "truth": c.transcript}
                for key, p in (("model", post), ("prototypes", prototype_posteriors(c))):
                    ranked = rank_posteriors(p, c.fps, choices)
                    row[key] = 1 + [t for t, _ in ranked].index(c.transcript)
                    row[key + "_top"] = ranked[0][0]
                row["template DTW"] = 1 + template_rank(c, choices).index(c.transcript)
                ranks.append(row)
    return scores, ranks, choices


# --- card ---------------------------------------------------------------------------------


def write_card(path: Path, info: dict) -> Path:
    """The model card: data, split, numbers, limits (markdown next to the ONNX file)."""
    s, ranks = info["scores"], info["ranks"]
    acc = "\n".join(
        f"| {k} | {a:.3f} | {b:.3f} |" for k, a, b in sorted(s.table(), key=lambda r: -r[1])
    )
    n_choices = len(info["choices"])
    keys = ("model", "prototypes", "template DTW")
    rank_rows = "\n".join(
        f"| {r['clip']} | {r['truth']} | " + " | ".join(str(r[k]) for k in keys) + " |"
        for r in ranks
    )
    mean = {k: np.mean([r[k] for r in ranks]) if ranks else float("nan") for k in keys}
    top1 = {k: sum(r[k] == 1 for r in ranks) for k in keys}
    counts = np.bincount(np.concatenate([c.visemes[c.valid] for c in info["clips"]]), minlength=15)
    dist = ", ".join(f"{v} {n}" for v, n in zip(VISEMES, counts) if n)
    text = f"""# {path.stem}: lip reader (mouth controls -> oculus15 visemes)

Made by `models/train_lipreader.py` on {info["date"]}:
`{info["command"]}` ({info["seconds"]:.0f} s on CPU).

## What it does

Input `features` (1, T, {N_FEATURES}) float32, one row per video frame: the ten mouth controls
(`bridge_server.mouth.controls.CONTROLS`) z-scored over the clip's valid frames, then their first
differences (`bridge_server.lipread.model.features`, version `{FEATURES_VERSION}`).
Output `logits` (1, T, 15): one score per oculus15 viseme ({" ".join(VISEMES)}).
`bridge_server.lipread.model.LipReaderModel` loads it (onnxruntime) and gives posteriors;
`rank_with_model` ranks candidate sentences by time warping their eSpeak visemes against them.

Network: Conv1d over 5 frames ({N_FEATURES} -> 32, ReLU), bidirectional GRU (32 per direction),
linear to 15; {info["params"]} parameters; dropout 0.2, feature noise 0.1. Loss: framewise
cross-entropy on valid frames (the targets are time-aligned, so CTC is not needed).
AdamW, lr 3e-3, {info["epochs"]} full-batch steps, seed {info["seed"]}, deterministic.

## Data

{len(info["clips"])} clips, {sum(len(c.times) for c in info["clips"])} frames at
{info["clips"][0].fps:g} fps, speakers: {", ".join(sorted({c.speaker for c in info["clips"]}))};
from `{info["ds"]}`. Targets: the viseme of the sound's forced alignment with the transcript
(pocketsphinx, by `lipsync dataset build`) at each frame. Frames per class: {dist}.

## Evaluation

Split: {info["split"]}. The exported model was trained on {info["trained_on"]}.

Framewise accuracy on held-out valid frames ({s.frames} frames, {s.speech_frames} of them
speech, i.e. not `sil`):

| predictor | all frames | speech frames |
|---|---|---|
{acc}

Sentence ranking: each held-out clip's transcript among {n_choices} candidates (the dataset's
transcripts plus {n_choices - len({c.transcript for c in info["clips"]})} sentences drawn from the GRID grammar, seed
{info["seed"]}), rank 1 = best. "model" and "prototypes": `rank_posteriors` (time warping of
the candidate's eSpeak visemes against the model's posteriors, or against the prototypes'
viseme weights read as posteriors); "template DTW": `bridge_server.lipread.reader.rank`, the
closed-vocabulary scorer without training (the bar this model must clear to ship):

| clip | transcript | model | prototypes | template DTW |
|---|---|---|---|---|
{rank_rows}

Top-1: {", ".join(f"{k} {top1[k]}/{len(ranks)}" for k in keys)}. Mean rank:
{", ".join(f"{k} {mean[k]:.1f}" for k in keys)} (chance {(n_choices + 1) / 2:.1f}).

## Limits

- {len(info["clips"])} clips is not a training set: the numbers above say the code runs end to
  end, not that the model reads lips. Expect it to learn little beyond speech versus silence.
  It is not shipped in git; it ships only once it beats the closed-vocabulary time-warping
  scorer (`bridge_server.lipread.reader`) on held-out speakers.
- The targets come from the sound, so they carry the aligner's errors (about 70 ms) and the
  sound's view of the mouth (a /k/ and an /h/ look alike; the mouth moves before the sound).
- Per-clip z-scoring needs the whole clip (offline), as does the bidirectional GRU.
- English only (eSpeak's visemes for the candidates); 25 fps GRID video of frontal faces.
"""
    path.write_text(text, encoding="utf-8")
    return path


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ds", type=Path, help="dataset folder (manifest.jsonl, clips/)")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "lipreader.onnx")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", nargs="*", default=[], metavar="SPEAKER|CLIP")
    p.add_argument("--distractors", type=int, default=20, help="random GRID sentences to rank")
    args = p.parse_args(argv)

    start = time.time()
    clips = load_dataset(args.ds)
    print(f"{len(clips)} clips, {sum(len(c.times) for c in clips)} frames", flush=True)
    scores, ranks, choices = evaluate(clips, args.holdout, args.epochs, args.seed, args.distractors)
    for name, a, b in scores.table():
        print(f"{name:16s} frame accuracy {a:.3f}   speech frames {b:.3f}")
    for r in ranks:
        print(f"{r['clip']:14s} rank of {len(choices)}: model {r['model']:2d}, prototypes "
              f"{r['prototypes']:2d}, template DTW {r['template DTW']:2d}; "
              f"model's top: {r['model_top']}")  # fmt: skip
    final = [c for c in clips if not (c.id in args.holdout or c.speaker in args.holdout)]
    model = train(final, epochs=args.epochs, seed=args.seed)
    meta = {"clips": len(final), "epochs": args.epochs, "seed": args.seed, "fps": final[0].fps}
    export_onnx(model, args.out, {k: str(v) for k, v in meta.items()})
    folds = splits(clips, args.holdout)
    split = (
        f"held out {', '.join(args.holdout)} ({len(folds[0][2])} clips)"
        if args.holdout
        else f"{len(folds)}-fold leave-one-{'clip' if folds[0][0].startswith('clip') else 'speaker'}-out"
    )
    card = write_card(
        args.out.with_suffix(".md"),
        {
            "scores": scores,
            "ranks": ranks,
            "choices": choices,
            "clips": clips,
            "params": n_parameters(model),
            "epochs": args.epochs,
            "seed": args.seed,
            "ds": args.ds,
            "split": split,
            "trained_on": f"{len(final)} clips" + (" (all)" if len(final) == len(clips) else ""),
            "date": datetime.date.today().isoformat(),
            "command": "python models/train_lipreader.py " + " ".join(argv or sys.argv[1:]),
            "seconds": time.time() - start,
        },
    )
    print(f"wrote {args.out} and {card} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

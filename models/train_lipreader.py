"""Train the lip reader: the mouth's geometry per video frame -> words and visemes, to ONNX.

    .venv/bin/python models/train_lipreader.py TRAIN_DS [TRAIN_DS ...] --out models/lipreader.onnx
        [--test NAME=DS ...] [--epochs N] [--seed S]

TRAIN_DS is what `lipsync dataset build videos/ --out DS --transcripts transcripts.tsv` writes
(bridge_server.dataset): manifest.jsonl (id, speaker, transcript, ok) and clips/<id>/ with
frames.npz (controls, lips, valid, visemes per frame) and timeline.json (the sound's word
times). Its clips are split by sentence, fixed by a hash of the clip id: 80% train, 10%
validation (picks the epoch), 10% test. Each --test NAME=DS is a set that no training or
choice ever touches (other speakers); every number of the model card comes from those and
from the seen speaker's test split.

The model: features from bridge_server.lipread.model.features (the ONE definition the run
time uses too: controls and lip points normalised per clip), a temporal convolution (5
frames), a 2-layer bidirectional GRU and two linear heads: the word at each frame (the
training transcripts' vocabulary and "sil") and the oculus15 viseme. Loss: framewise
cross-entropy, both heads. The word targets come from the sound's forced alignment, so the
frames are labelled in time and no CTC is needed; sentences come from decoding the word
posteriors with the GRID grammar (bridge_server.lipread.decode).

Augmentation, for speakers it has never seen: mirroring (left and right lips swap), small
rotations of the lips, time stretching (0.8-1.25) and feature noise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
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

from bridge_server.lipread import decode  # noqa: E402
from bridge_server.lipread.model import (  # noqa: E402
    FEATURES_VERSION,
    N_FEATURES,
    VISEMES,
    features,
    log_softmax,
)
from bridge_server.lipread.reader import load_grammar  # noqa: E402
from bridge_server.mouth.controls import CONTROLS  # noqa: E402
from bridge_server.mouth.features import N_CONTROLS  # noqa: E402

SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}

# --- data ---------------------------------------------------------------------------------


@dataclass
class Clip:
    """One clip: per-frame geometry, and the word and viseme the sound gives each frame."""

    id: str
    speaker: str
    transcript: str
    times: np.ndarray  # (N,) seconds
    controls: np.ndarray  # (N, 10) mouth.CONTROLS order
    lips: np.ndarray  # (N, 40, 3) canonical lip points
    valid: np.ndarray  # (N,) bool
    visemes: np.ndarray  # (N,) index into VISEMES
    words: list[tuple[str, float, float]]  # (word, start, end) seconds, from the sound

    @property
    def fps(self) -> float:
        return 1.0 / float(np.median(np.diff(self.times))) if len(self.times) > 1 else 25.0

    def word_targets(self, vocab: list[str]) -> np.ndarray:
        """(N,) the index in vocab of the word heard at each frame (sil between words)."""
        y = np.full(len(self.times), vocab.index(decode.SILENCE), np.int64)
        for word, start, end in self.words:
            if word in vocab:
                y[(self.times >= start) & (self.times < end)] = vocab.index(word)
        return y


def load_dataset(ds: str | Path) -> list[Clip]:
    """Every usable clip of a dataset folder (manifest.jsonl + clips/<id>/)."""
    ds = Path(ds).expanduser()
    manifest = ds / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found; build it with `lipsync dataset build` first")
    clips = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        folder = ds / "clips" / str(row.get("id"))
        if not row.get("ok", False) or not (folder / "frames.npz").is_file():
            continue
        with np.load(folder / "frames.npz") as z:
            if tuple(str(n) for n in z["control_names"]) != CONTROLS:
                raise SystemExit(
                    f"{folder}: controls {list(z['control_names'])} differ from {CONTROLS}"
                )
            arrays = {
                k: np.asarray(z[k]) for k in ("times", "controls", "lips", "valid", "visemes")
            }
        timeline = json.loads((folder / "timeline.json").read_text(encoding="utf-8"))
        words = [(w["text"].lower(), w["start"], w["end"]) for w in timeline["words"]]
        clips.append(Clip(str(row["id"]), str(row.get("speaker") or "unknown"),
                          str(row.get("transcript") or "").lower(), arrays["times"].astype(float),
                          arrays["controls"].astype(float), arrays["lips"].astype(float),
                          arrays["valid"].astype(bool), arrays["visemes"].astype(np.int64), words))  # fmt: skip
    if not clips:
        raise SystemExit(f"{ds} holds no usable clip (ok, with frames.npz)")
    return clips


def split_of(clip_id: str) -> str:
    """train, validation or test, fixed by the clip id alone (so it never changes)."""
    h = int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) / 0x100000000
    edge = 0.0
    for name, share in SPLITS.items():
        edge += share
        if h < edge:
            return name
    return "test"


# --- augmentation -------------------------------------------------------------------------


def mirror_order(clips: list[Clip]) -> np.ndarray:
    """For each lip point, the point at its mirror position (x -> -x) in the mean lip shape."""
    shape = np.nanmean(np.concatenate([c.lips[c.valid] for c in clips[:50]]), axis=0)[:, :2]
    centre = shape[:, 0].mean()
    mirrored = shape.copy()
    mirrored[:, 0] = 2 * centre - shape[:, 0]
    dist = np.linalg.norm(shape[None] - mirrored[:, None], axis=2)
    return dist.argmin(axis=1)


SWAPPED = [CONTROLS.index(n) for n in CONTROLS]
for _left in [n for n in CONTROLS if n.endswith("_left")]:
    _i, _j = CONTROLS.index(_left), CONTROLS.index(_left.replace("_left", "_right"))
    SWAPPED[_i], SWAPPED[_j] = _j, _i


def augmented(clip: Clip, rng: np.random.Generator, order: np.ndarray):
    """Features, word and viseme targets of a randomly changed copy of the clip."""
    lips, controls, n = clip.lips.copy(), clip.controls.copy(), len(clip.times)
    if rng.random() < 0.5:  # mirror: x flips, left and right swap
        lips = lips[:, order]
        lips[:, :, 0] *= -1
        controls = controls[:, SWAPPED]
    angle = np.deg2rad(rng.normal(0.0, 4.0))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lips[:, :, :2] = lips[:, :, :2] @ rot.T
    stretch = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    m = max(8, int(round(n * stretch)))
    src = np.clip(np.round(np.linspace(0, n - 1, m)).astype(int), 0, n - 1)
    return src, features(controls[src], clip.valid[src], lips[src])


# --- model --------------------------------------------------------------------------------


INPUTS = ("both", "controls", "lips")  # which features the model sees (--inputs: comparison)


def input_mask(inputs: str) -> np.ndarray:
    """(F,) 1 for the features `inputs` keeps: the 10 controls, the 40 lip points, or both
    (each with its differences, the second half of the features)."""
    controls = np.arange(N_FEATURES // 2) < N_CONTROLS
    group = {"both": np.ones_like(controls), "controls": controls, "lips": ~controls}[inputs]
    return np.tile(group, 2).astype(np.float32)


class LipReaderNet(nn.Module):
    """(B, T, F) -> words (B, T, V) and visemes (B, T, 15): conv, 2-layer bi-GRU, two heads."""

    def __init__(self, n_words: int, width: int = 96, dropout: float = 0.3, inputs: str = "both"):
        super().__init__()
        self.register_buffer("keep", torch.from_numpy(input_mask(inputs)))  # in the ONNX too
        self.conv = nn.Conv1d(N_FEATURES, width, kernel_size=5, padding=2)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(width, width, num_layers=2, batch_first=True, bidirectional=True,
                          dropout=dropout)  # fmt: skip
        self.words = nn.Linear(2 * width, n_words)
        self.visemes = nn.Linear(2 * width, len(VISEMES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.conv(self.drop(x * self.keep).transpose(1, 2))).transpose(1, 2)
        h, _ = self.gru(h)
        h = self.drop(h)
        return self.words(h), self.visemes(h)


@contextlib.contextmanager
def deterministic(seed: int, threads: int = 2):
    """Seeded, deterministic torch inside; the caller's settings after."""
    before, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield np.random.default_rng(seed)
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(det)


class BestEpoch:
    """The weights after the epoch that scored best on validation, put back at the end."""

    def __init__(self):
        self.score, self.state = float("-inf"), None

    def offer(self, score: float, net: nn.Module) -> None:
        if score > self.score:
            self.score, self.state = score, {k: v.clone() for k, v in net.state_dict().items()}

    def restore(self, net: nn.Module) -> None:
        if self.state is not None:
            net.load_state_dict(self.state)


def _pad(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
    t = max(len(f) for f, *_ in items)
    x = np.zeros((len(items), t, N_FEATURES), np.float32)
    yw, yv = np.zeros((len(items), t), np.int64), np.zeros((len(items), t), np.int64)
    mask = np.zeros((len(items), t), bool)
    for i, (f, w, v, ok) in enumerate(items):
        n = len(f)
        x[i, :n], yw[i, :n], yv[i, :n], mask[i, :n] = f, w, v, ok
    return (torch.from_numpy(a) for a in (x, yw, yv, mask))


def train(clips, vocab, *, epochs, seed, validation=(), slots=None, batch=32, lr=2e-3, log=print,
          inputs="both"):  # fmt: skip
    """The model after the epoch that reads the validation clips best (word accuracy with
    the grammar), or after the last epoch without validation clips."""
    with deterministic(seed) as rng:
        model = LipReaderNet(len(vocab), inputs=inputs)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=epochs * ((len(clips) + batch - 1) // batch)
        )
        loss_fn = nn.CrossEntropyLoss(reduction="none")
        order, targets = mirror_order(clips), [c.word_targets(vocab) for c in clips]
        best = BestEpoch()
        for epoch in range(epochs):
            model.train()
            for start in range(0, len(clips), batch):
                items = []
                for i in rng.permutation(len(clips))[start : start + batch]:
                    src, f = augmented(clips[i], rng, order)
                    f = f + rng.normal(0, 0.05, f.shape).astype(np.float32)
                    items.append((f, targets[i][src], clips[i].visemes[src], clips[i].valid[src]))
                x, yw, yv, mask = _pad(items)
                pw, pv = model(x)
                m = mask.float()
                loss = ((loss_fn(pw.transpose(1, 2), yw) + 0.5 * loss_fn(pv.transpose(1, 2), yv))
                        * m).sum() / m.sum().clamp(min=1)  # fmt: skip
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
            if validation:
                acc = accuracy(model, validation, vocab, slots)["words"]
                log(f"epoch {epoch + 1:3d}: loss {loss.item():.3f}, validation words {acc:.3f}")
                best.offer(acc, model)
        best.restore(model)
        model.eval()
    return model


def word_log_posteriors(model: LipReaderNet, clip: Clip) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(features(clip.controls, clip.valid, clip.lips))[None]
        return log_softmax(model(x)[0][0].double().numpy())


# --- evaluation ---------------------------------------------------------------------------


def accuracy(model, clips, vocab, slots, reads=None) -> dict:
    """Word and sentence accuracy of grammar decoding, and per slot."""
    model.eval()
    hits, sentences, per_slot = 0, 0, np.zeros(len(slots))
    for clip in clips:
        read = decode.read_slots(word_log_posteriors(model, clip), vocab, slots, clip.fps, 1)
        said = read[0].words if read else []
        truth = clip.transcript.split()
        ok = [a == b for a, b in zip(said, truth)] + [False] * (len(truth) - len(said))
        hits += sum(ok)
        sentences += all(ok)
        per_slot += np.array(ok[: len(slots)], float)
        if reads is not None:
            reads.append((clip.id, clip.transcript, " ".join(said)))
    n = max(len(clips), 1)
    return {"words": hits / max(sum(len(c.transcript.split()) for c in clips), 1),
            "sentences": sentences / n, "slots": (per_slot / n).tolist(), "clips": len(clips)}  # fmt: skip


def template_accuracy(clips, slots) -> dict:
    """The same numbers for the template matcher (bridge_server.lipread.reader.read_grammar)."""
    from bridge_server.lipread.reader import read_grammar
    from bridge_server.mouth.controls import Mouth

    hits, sentences, per_slot = 0, 0, np.zeros(len(slots))
    for c in clips:
        mouth = Mouth(
            c.times, c.lips, {k: c.controls[:, i] for i, k in enumerate(CONTROLS)}, c.valid
        )
        said = read_grammar(mouth, slots, 1)[0].text.split()
        ok = [a == b for a, b in zip(said, c.transcript.split())]
        hits, sentences, per_slot = (
            hits + sum(ok),
            sentences + all(ok),
            per_slot + np.array(ok, float),
        )
    n = max(len(clips), 1)
    return {"words": hits / max(6 * len(clips), 1), "sentences": sentences / n,
            "slots": (per_slot / n).tolist(), "clips": len(clips)}  # fmt: skip


# --- export -------------------------------------------------------------------------------


class _Exported(nn.Module):
    def __init__(self, model: LipReaderNet):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def export_onnx(model: LipReaderNet, path: Path, vocab: list[str], metadata: dict) -> Path:
    """ONNX: input "features" (1, T, F), outputs "words" (1, T, V) and "logits" (1, T, 15)."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings():  # the legacy exporter's notices (no onnxscript here)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Exported(model).eval(), (torch.zeros(1, 16, N_FEATURES),), str(tmp),
            input_names=["features"], output_names=["words", "logits"],
            dynamic_axes={"features": {1: "frames"}, "words": {1: "frames"}, "logits": {1: "frames"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(tmp))
    meta = {"words": json.dumps(vocab), "classes": json.dumps(VISEMES),
            "features_version": FEATURES_VERSION, **metadata}  # fmt: skip
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)  # all or nothing
    return path


# --- card ---------------------------------------------------------------------------------


def _row(name: str, a: dict) -> str:
    slots = " | ".join(f"{s:.0%}" for s in a["slots"])
    return f"| {name} | {a['clips']} | {a['words']:.1%} | {a['sentences']:.1%} | {slots} |"


def write_card(path: Path, info: dict) -> Path:
    rows = "\n".join(_row(name, a) for name, a in info["results"])
    text = f"""# {path.stem}: lip reader (the mouth's geometry -> GRID words and visemes)

Made by `models/train_lipreader.py` on {info["date"]} ({info["seconds"] / 60:.0f} min on a
2-core CPU, deterministic: same data and seed, same weights):
`{info["command"]}`

## What it does

Input `features` (1, T, {N_FEATURES}) float32 per video frame
(`bridge_server.lipread.model.features`, version `{FEATURES_VERSION}`): the ten mouth
controls z-scored over the clip, the 40 lip points' x and y less their clip mean and divided
by the clip's RMS lip motion, and the first differences of both. Outputs `words` (1, T,
{len(info["vocab"])}): a score per word ({len(info["vocab"]) - 1} GRID words and `sil`) and
`logits` (1, T, 15): a score per oculus15 viseme. `lipsync lipread --grammar grid` decodes
the word posteriors with the grammar (`bridge_server.lipread.decode`: silence, one word per
slot, optional pauses); `--choices` lines of its words are read the same way, other lines by
time warping of their visemes.

Network: Conv1d over 5 frames ({N_FEATURES} -> 96), 2-layer bidirectional GRU (96 per
direction), two linear heads; {info["params"]} parameters. Framewise cross-entropy (words +
0.5 x visemes) on valid frames; AdamW, one-cycle lr 2e-3, {info["epochs"]} epochs of batches
of 32, seed {info["seed"]}; the epoch with the best validation word accuracy is kept
({info["best_epoch"]}). Augmentation: mirroring, rotations (4 degrees sd), time stretch
0.8-1.25, feature noise 0.05.

Why this input, measured (2026-12-03): the same network and training with `--inputs controls`
(the ten controls and their differences only) read less everywhere: s1 test 79.7% (both
87.7%), s4 41.7% (41.7%), seven more unseen speakers 42.9% (54.8%), shared 27.8% (38.9%); the
lip points carry what the ten controls summarise away. With `--inputs lips` (the 40 points
only): s1 test 88.9%, s4 41.7%, unseen7 47.6%, shared 44.4%; over the 360 unseen words both
read 43.1%, lips only 42.5%: the controls add little but never cost, so both stay. Why no crops: one training speaker.
Per-clip normalised geometry removes what differs between speakers (resting shape, mouth size,
distance to the camera, range of motion); pixels (mouth crops) would carry the one speaker's
skin, teeth, beard and light.

## Data

GRID (Cooke, Barker, Cunningham, Shao 2006; CC BY 4.0). Training: {info["train"]}
clips of speaker(s) {info["speakers"]}, validation {info["validation"]}; split by sentence
with a hash of the clip id (`split_of`: 80/10/10), so the test sentences never trained the
model. Word targets: the sound's forced alignment of the transcript (`lipsync dataset
build`, pocketsphinx). Unseen speakers (never trained on, never used for any choice):
{info["tests"]}.

## Accuracy (GRID grammar)

| set | clips | words | sentences | command | colour | preposition | letter | digit | adverb |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Chance is about 1/4 for command, colour, preposition and adverb, 1/25 for the letter and 1/10
for the digit. LipNet (Assael et al. 2016, trained on ~30 speakers): 95.2% of words on seen
speakers, 88.6% on unseen ones.

## Limits

- One training speaker: the unseen-speaker rows are the honest measure; expect less on
  faces turned away, dark or small, and far less on speech outside the GRID grammar.
- Per-clip normalisation and the bidirectional GRU need the whole clip (offline).
- Targets come from the sound (aligner errors, and the mouth moves before the sound).
"""
    path.write_text(text, encoding="utf-8")
    return path


# --- command line -------------------------------------------------------------------------


def card_facts(parts: dict, tests: dict, began: float, script: str, argv) -> dict:
    """What every model card says of its data and making: clip counts, speakers, the unseen
    sets, the date, the time taken and the command (items with .speaker)."""
    return {
        "train": len(parts["train"]), "validation": len(parts["validation"]),
        "speakers": ", ".join(sorted({c.speaker for c in parts["train"]})),
        "tests": "; ".join(f"{k}: {len(v)} clips of {', '.join(sorted({c.speaker for c in v}))}"
                           for k, v in tests.items()) or "none given",
        "date": datetime.date.today().isoformat(), "seconds": time.time() - began,
        "command": f"python models/{script} " + " ".join(argv or sys.argv[1:]),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("train_sets", nargs="+", type=Path, metavar="TRAIN_DS")
    p.add_argument("--test", nargs="*", default=[], metavar="NAME=DS", help="unseen speakers")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "lipreader.onnx")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grammar", default="grid")
    p.add_argument("--inputs", choices=INPUTS, default="both",
                   help="the features it sees, to compare them (the shipped model: both)")  # fmt: skip
    args = p.parse_args(argv)

    began = time.time()
    slots = load_grammar(args.grammar)
    # One clip per id, in id order: the same clips built into one folder or several train alike.
    clips = sorted({c.id: c for ds in args.train_sets for c in load_dataset(ds)}.values(),
                   key=lambda c: c.id)  # fmt: skip
    parts = {name: [c for c in clips if split_of(c.id) == name] for name in SPLITS}
    words = {w for slot in slots for w in slot} | {
        w for c in parts["train"] for w in c.transcript.split()
    }
    vocab = [decode.SILENCE] + sorted(words)
    tests = {k: load_dataset(v) for k, v in (t.split("=", 1) for t in args.test)}
    print(f"train {len(parts['train'])}, validation {len(parts['validation'])}, test "
          f"{len(parts['test'])}; unseen: {', '.join(f'{k} {len(v)}' for k, v in tests.items())}")  # fmt: skip
    epochs_seen = []
    model = train(parts["train"], vocab, epochs=args.epochs, seed=args.seed,
                  validation=parts["validation"], slots=slots, inputs=args.inputs,
                  log=lambda line: (print(line, flush=True), epochs_seen.append(line)))  # fmt: skip
    best_epoch = (
        max(epochs_seen, key=lambda line: float(line.rsplit(" ", 1)[1])).split(":")[0]
        if epochs_seen
        else f"the last, {args.epochs}: no validation clips"
    )
    results = []
    for name, group in [("seen speaker, test split", parts["test"]), *tests.items()]:
        results.append((f"model: {name}", accuracy(model, group, vocab, slots)))
        results.append((f"template matcher: {name}", template_accuracy(group, slots)))
        print(_row(*results[-2]), "\n" + _row(*results[-1]), flush=True)
    export_onnx(model, args.out, vocab, {"epochs": args.epochs, "seed": args.seed,
                                         "grammar": args.grammar, "fps": parts["train"][0].fps,
                                         "inputs": args.inputs})  # fmt: skip
    card = write_card(args.out.with_suffix(".md"), {
        "results": results, "vocab": vocab, "params": sum(q.numel() for q in model.parameters()),
        "epochs": args.epochs, "seed": args.seed, "best_epoch": best_epoch,
        **card_facts(parts, tests, began, "train_lipreader.py", argv),
    })  # fmt: skip
    print(f"wrote {args.out} and {card} ({time.time() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

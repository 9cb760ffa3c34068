"""Train the motion model: a line's timed phonemes -> the ten mouth controls per frame, to ONNX.

    .venv/bin/python models/train_motion.py TRAIN_DS [TRAIN_DS ...] --out models/motion.onnx
        [--test NAME=DS ...] [--epochs N] [--seed S]

TRAIN_DS is what `lipsync dataset build` writes (see models/train_lipreader.py): per clip the
tracked mouth controls of each video frame (frames.npz) and the sound's aligned phonemes
(timeline.json). The clips are split by the lip reader's fixed hash of the clip id (80% train,
10% validation picks the epoch, 10% test); each --test NAME=DS is another speaker that no
training or choice touches.

The model: bridge_server.mouth.motion.features (the ONE definition the run time uses) at 100
frames a second, a 1-D convolution and six residual dilated convolutions (dilations 1 to 16:
it sees about 0.35 s either side), a sigmoid head of ten controls and of the ARKit channels
the face landmarker moves (scored in clips built with its blendshapes; `Arkit`, `kept`). Loss:
squared error at the video's frames where a face was tracked. Augmentation, for voices and speakers it never saw:
time stretching (0.9-1.1), each phoneme edge moved by up to 15 ms (aligners are that far off),
dropout; the sound's bands left out of a third of the lines (so that the model also reads
phonemes alone, as for a timeline re-animated without its sound) and given a little noise.

Every number of the card compares the learned curves with the rules' on the same line, both
as the product makes them (core.curves.channel_weights, ARKit channels, contacts on top), with
the tracked real mouth: Pearson r per clip, averaged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "models"):  # run as a script from anywhere; the other trainers too
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import train_lipreader as LR  # noqa: E402  (models/: dataset loading, split, determinism)
from torch import nn  # noqa: E402

from bridge_server.core.curves import CurveSettings, channel_weights  # noqa: E402
from bridge_server.core.timeline import Phoneme  # noqa: E402
from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.media.audio import load_audio  # noqa: E402
from bridge_server.mouth import motion  # noqa: E402
from bridge_server.mouth.controls import CONTROLS  # noqa: E402

STRETCH, JITTER_S, DROPOUT = 0.1, 0.015, 0.1
SOUND_DROPOUT, BAND_NOISE = 1 / 3, 0.3  # lines trained without their sound; log-energy noise
MIN_RANGE = 0.05  # an ARKit score the tracker moves less than this is noise, not learned


@dataclass
class Line:
    """One clip: its phonemes and the tracked controls at its video frames."""

    id: str
    speaker: str
    phonemes: list[Phoneme]
    times: np.ndarray  # (N,) video frame times, seconds
    controls: np.ndarray  # (N, 10) CONTROLS order
    valid: np.ndarray  # (N,) a face was tracked
    sound: tuple[np.ndarray, int]  # the clip's samples and their rate
    bands: np.ndarray  # (A, 4) motion.sound_bands of the sound
    blendshapes: dict[str, np.ndarray]  # the face landmarker's ARKit scores per frame, if built so


def load(ds: str | Path) -> list[Line]:
    ds = Path(ds).expanduser()
    lines = []
    for c in LR.load_dataset(ds):
        folder = ds / "clips" / c.id
        timeline = json.loads((folder / "timeline.json").read_text(encoding="utf-8"))
        phonemes = [Phoneme(p["ipa"], p["start"], p["end"]) for p in timeline["phonemes"]]
        audio = load_audio(folder / "audio.wav")
        sound = (audio.samples, audio.sample_rate)
        with np.load(folder / "frames.npz") as z:  # older builds have no blendshapes
            shapes = {} if "blendshapes" not in z.files else dict(
                zip((str(n) for n in z["blendshape_names"]), z["blendshapes"].T))  # fmt: skip
        lines.append(Line(c.id, c.speaker, phonemes, c.times, c.controls.astype(np.float32),
                          c.valid, sound, motion.sound_bands(*sound), shapes))  # fmt: skip
    return lines


@dataclass
class Arkit:
    """The ARKit mouth channels the model learns: those the tracker moves over at least
    MIN_RANGE on the training lines, each scaled 0..1 between its 1st and 99th percentile."""

    names: list[str]
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, lines: list[Line]) -> Arkit:
        tracked = [x for x in lines if x.blendshapes]
        names, low, high = [], [], []
        for name in load_set("arkit").channels:
            if tracked and all(name in x.blendshapes for x in tracked):
                v = np.concatenate([x.blendshapes[name][x.valid] for x in tracked])
                lo, hi = np.percentile(v, [1, 99])
                if hi - lo >= MIN_RANGE:
                    names.append(name), low.append(lo), high.append(hi)
        return cls(names, np.array(low), np.array(high))

    @classmethod
    def none(cls) -> Arkit:
        return cls([], np.zeros(0), np.zeros(0))

    def only(self, keep: list[int]) -> Arkit:
        return Arkit([self.names[i] for i in keep], self.low[keep], self.high[keep])

    def metadata(self) -> dict[str, str]:
        """The channels' names and the tracker's scores that 0 and 1 stand for, per channel."""
        ranges = [[round(float(a), 4), round(float(b), 4)] for a, b in zip(self.low, self.high)]
        return {"arkit": json.dumps(self.names), "arkit_range": json.dumps(ranges)}

    def targets(self, line: Line) -> np.ndarray | None:
        """(N, K) the line's tracked channels on the model's scale; None if not tracked."""
        if not self.names or not line.blendshapes:
            return None
        v = np.stack([line.blendshapes[n] for n in self.names], 1)
        return np.clip((v - self.low) / (self.high - self.low), 0, 1).astype(np.float32)


def augmented(line: Line, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Features of the line spoken a little faster or slower, its phoneme edges moved a little,
    its sound heard with noise or not at all, and the 100 Hz rows on its video frames."""
    k = float(np.exp(rng.uniform(-STRETCH, STRETCH)))
    moved = []
    for p in line.phonemes:
        a, b = p.start * k + rng.normal(0, JITTER_S), p.end * k + rng.normal(0, JITTER_S)
        moved.append(Phoneme(p.ipa, max(a, 0.0), max(b, a + motion.HOP_S)))
    bands = None
    if rng.random() >= SOUND_DROPOUT:
        stretched = line.bands[np.minimum(np.rint(np.arange(len(line.bands) * k) / k).astype(int),
                                          len(line.bands) - 1)]  # fmt: skip
        bands = stretched + rng.normal(0, BAND_NOISE, stretched.shape)  # log energy: ~1.3 dB
    x = motion.features(moved, float(line.times[-1]) * k + motion.HOP_S, bands)
    rows = np.clip(np.rint(line.times * k / motion.HOP_S).astype(int), 0, len(x) - 1)
    return x, rows


class MotionNet(nn.Module):
    """(B, T, F) -> (B, T, 10 + K) controls then ARKit channels, 0..1: a dilated residual
    convolution over time."""

    def __init__(self, arkit: int = 0, width: int = 64, dilations=(1, 2, 4, 8, 16, 1)):
        super().__init__()
        self.inp = nn.Conv1d(motion.n_features(), width, 5, padding=2)
        self.blocks = nn.ModuleList(
            nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in dilations
        )
        self.drop = nn.Dropout(DROPOUT)
        self.out = nn.Conv1d(width, len(CONTROLS) + arkit, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x.transpose(1, 2)))
        for block in self.blocks:
            h = h + self.drop(torch.relu(block(h)))
        return torch.sigmoid(self.out(h)).transpose(1, 2)


def train(lines: list[Line], *, epochs: int, seed: int, arkit: Arkit | None = None,
          validation=(), batch=32, lr=2e-3, log=print) -> MotionNet:  # fmt: skip
    """The model after the epoch whose validation jaw correlation is best (else the last).
    Its ARKit channels learn from the lines that have tracked blendshapes."""
    arkit = arkit or Arkit.none()
    targets = {x.id: _targets(x, arkit) for x in lines}
    with LR.deterministic(seed) as rng:
        net = MotionNet(len(arkit.names))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        best = LR.BestEpoch()
        for epoch in range(epochs):
            net.train()
            for start in range(0, len(lines), batch):
                chosen = [lines[i] for i in rng.permutation(len(lines))[start : start + batch]]
                made = [augmented(line, rng) for line in chosen]
                x = torch.zeros(len(made), max(len(f) for f, _ in made), motion.n_features())
                for i, (f, _) in enumerate(made):
                    x[i, : len(f)] = torch.from_numpy(f)
                out = net(x)
                loss = sum(
                    ((out[i, rows][m][:, : y.shape[1]] - y[m]) ** 2).mean()
                    for i, (line, (_, rows)) in enumerate(zip(chosen, made))
                    if (m := torch.from_numpy(line.valid)).any()
                    and (y := targets[line.id]) is not None
                ) / len(made)  # fmt: skip
                opt.zero_grad()
                loss.backward()
                opt.step()
            if validation:
                r = evaluate(_Torch(net, arkit), validation, (TABLE,))[TABLE]["jaw"]
                log(f"epoch {epoch + 1:3d}: loss {loss.item():.4f}, validation jaw r {r:.3f}")
                best.offer(r, net)
        best.restore(net)
        net.eval()
    return net


def _targets(line: Line, arkit: Arkit) -> torch.Tensor:
    """(N, 10 [+ K]) what the net learns at the line's frames: the controls, and the ARKit
    channels where the line has them (the loss reads as many columns as there are)."""
    shapes = arkit.targets(line)
    y = line.controls if shapes is None else np.concatenate([line.controls, shapes], 1)
    return torch.from_numpy(y)


class Averaged(nn.Module):
    """Several trained nets as one: the mean of their controls (seeds differ; the mean of a
    few reads unseen speakers more steadily than any one of them)."""

    def __init__(self, nets: list[MotionNet]):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.nets]).mean(dim=0)


class _Torch:
    """A trained MotionNet where the run time expects a MotionModel (for the evaluation)."""

    def __init__(self, net: MotionNet, arkit: Arkit):
        self.net, self.names = net, CONTROLS + tuple(arkit.names)

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net(torch.from_numpy(np.asarray(x, np.float32))[None])[0].numpy()


class ControlsOnly:
    """A model's controls alone: the ARKit channels made from them by the table, as a model
    without blendshapes makes them (what the learned ones are measured against)."""

    def __init__(self, model):
        self.model, self.names = model, CONTROLS

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.model.run(x)[:, : len(CONTROLS)]


# --- evaluation ---------------------------------------------------------------------------

# What the card compares: the product's ARKit channels with the tracked controls.
MEASURES = {
    "jaw": (("jawOpen",), ("jaw_open",)),
    "lips apart": (("mouthLowerDownLeft",), ("lips_apart",)),
    "rounding": (("mouthFunnel", "mouthPucker"), ("funnel", "pucker")),
}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else float("nan")


HOWS = ("learned", PHONEMES_ONLY := "learned, phonemes only", TABLE := "learned, ARKit by table",
        "rules")  # fmt: skip


def curves(line: Line, how: str, model=None) -> dict[str, np.ndarray]:
    """The product's ARKit channels for the line, at its video frames: learned with the sound
    (as bake, say and track make them), learned from the phonemes alone (a timeline
    re-animated from its file), learned but ARKit made from the controls by the table (as a
    model without blendshapes makes it), or the rules."""
    arkit = load_set("arkit")
    if how == "rules":
        return channel_weights(line.phonemes, arkit, line.times, CurveSettings())
    sound = None if how == PHONEMES_ONLY else line.sound
    model = ControlsOnly(model) if how == TABLE else model
    return motion.learned_channels(line.phonemes, arkit, line.times,
                                   CurveSettings(motion="learned"), sound, model)  # fmt: skip


def evaluate(model, lines: list[Line], hows=HOWS) -> dict:
    """Mean Pearson r per measure and closures shut on p/b/m, for each way of making the
    curves; "arkit": the mean r of the model's ARKit channels with the tracker's blendshape
    scores (lines built with them; NaN without)."""
    learned = [n for n in model.names if n not in CONTROLS]
    found = {how: {k: [] for k in MEASURES} | {"arkit": [], "closures": [0, 0]} for how in hows}
    for line in lines:
        v = line.valid
        for how in found:
            ch = curves(line, how, model)
            for name, (ours, theirs) in MEASURES.items():
                a = sum(ch[c] for c in ours)[v]
                b = sum(line.controls[:, CONTROLS.index(c)] for c in theirs)[v]
                found[how][name].append(pearson(a, b))
            if learned and line.blendshapes:
                found[how]["arkit"].append(np.nanmean(
                    [pearson(ch[n][v], line.blendshapes[n][v]) for n in learned]))  # fmt: skip
            for p in line.phonemes:
                if p.ipa in ("p", "b", "m"):
                    near = (line.times >= p.start - 0.02) & (line.times <= p.end + 0.02)
                    found[how]["closures"][0] += bool((ch["mouthPressLeft"][near] >= 0.99).any())
                    found[how]["closures"][1] += 1
    return {how: {k: (v if k == "closures" else float(np.nanmean(v)) if v else float("nan"))
                  for k, v in d.items()} for how, d in found.items()}  # fmt: skip


# --- export and card ------------------------------------------------------------------------


def kept(net: nn.Module, arkit: Arkit, validation: list[Line]) -> list[int]:
    """The learned ARKit channels the product takes (their indices in `arkit`): all but
    mouthClose (the rules' seal) and those of a measure (jaw, lips apart, rounding) that the
    table's channels, made from the learned controls, follow more closely on the validation
    lines. The landmarker's jawOpen is not the tracked jaw (per clip r 0.73 on s1): a model
    that learned it follows the jaw less well."""
    return keepers(arkit.names, evaluate(_Torch(net, arkit), validation, ("learned", TABLE)))


def keepers(names: list[str], found: dict) -> list[int]:
    """Indices of `names` but mouthClose (the product makes it: the lips sealed over the jaw on
    p/b/m) and the channels of each measure where `found[TABLE]` beats `found["learned"]`."""
    worse = {c for name, (ours, _) in MEASURES.items()
             if found["learned"][name] < found[TABLE][name] for c in ours}  # fmt: skip
    worse.add(motion.SEAL)
    return [i for i, name in enumerate(names) if name not in worse]


class _Outputs(nn.Module):
    """The net's columns as the run time's outputs: controls, and the kept ARKit channels."""

    def __init__(self, net: nn.Module, keep: list[int]):
        super().__init__()
        self.net, self.keep = net, [len(CONTROLS) + i for i in keep]

    def forward(self, x: torch.Tensor):
        y = self.net(x)
        controls = y[..., : len(CONTROLS)]
        return (controls, y[..., self.keep]) if self.keep else controls


def export_onnx(net: nn.Module, path: Path, metadata: dict, arkit: Arkit | None = None,
                keep: list[int] | None = None) -> Path:  # fmt: skip
    """ONNX: input "features" (1, T, F), outputs "controls" (1, T, 10) and, when it learned
    them, "arkit" (1, T, K): the `keep` channels of `arkit` (default all), named in the
    metadata."""
    import onnx

    arkit = arkit or Arkit.none()
    keep = list(range(len(arkit.names))) if keep is None else keep
    arkit = arkit.only(keep)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    names = ["controls"] + (["arkit"] if keep else [])
    with warnings.catch_warnings():  # the legacy exporter's notices (no onnxscript here)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Outputs(net, keep).eval(), (torch.zeros(1, 64, motion.n_features()),), str(tmp),
            input_names=["features"], output_names=names,
            dynamic_axes={"features": {1: "frames"}} | {n: {1: "frames"} for n in names},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(tmp))
    meta = {"features_version": motion.FEATURES_VERSION, "controls": json.dumps(CONTROLS),
            "hop_s": motion.HOP_S, **metadata}  # fmt: skip
    if keep:
        meta |= arkit.metadata()
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)  # all or nothing
    return path


HEADER = """| set | motion | clips | jaw r | lips apart r | rounding r | ARKit r | closures |
|---|---|---|---|---|---|---|---|"""


def _rows(name: str, found: dict, clips: int) -> list[str]:
    out = []
    for how, d in found.items():
        shut, total = d["closures"]
        out.append(f"| {name} | {how} | {clips} | {d['jaw']:.3f} | {d['lips apart']:.3f} | "
                   f"{d['rounding']:.3f} | {d['arkit']:.3f} | {shut}/{total} |")  # fmt: skip
    return out


def write_card(path: Path, info: dict) -> Path:
    rows = [r for name, found, clips in info["results"] for r in _rows(name, found, clips)]
    path.write_text(f"""# Motion model card: `models/motion.onnx`

A line's timed phonemes and its loudness -> the ten mouth controls (`bridge_server/mouth/controls.py`) and
the ARKit mouth channels it learned from the face landmarker's scores, at 100 frames a second;
`--motion learned` turns them into any rig's channels (ARKit rigs take the learned channels
themselves), with the rules' closures and f/v contacts on top (`bridge_server/mouth/motion.py`).

- **Data**: GRID audio-visual corpus (Cooke, Barker, Cunningham, Shao 2006, CC BY 4.0), speaker
  s1's clips built with `lipsync dataset build` (tracked mouth controls and the face
  landmarker's ARKit blendshape scores per video frame, the sound's forced-aligned phonemes;
  {info["with_blendshapes"]} training clips have blendshapes: the ARKit channels learn from them). Train {info["train"]}, validation {info["validation"]} clips
  (fixed split by a hash of the clip id, `train_lipreader.split_of`); speakers: {info["speakers"]}.
- **Never seen in training or choices**: {info["tests"]}.
- **Model**: {info["params"]:,} parameters; dilated residual 1-D convolution over
  `motion.features` ({motion.n_features()} per 10 ms: the phoneme's class in oculus15,
  rhubarb, preston_blair and vrm5, its position and length; the sound's log energy in four
  mel bands, scaled over the line); sigmoid controls and ARKit channels (each 0..1 between
  the training speaker's 1st and 99th percentile of the tracker's score). Squared error on
  tracked frames; Adam 2e-3, {info["epochs"]} epochs; {info["seeds"]} nets from seeds
  {info["seed"]}.. averaged (best validation jaw r: {info["best"]}).
  Augmentation: time stretch 0.9-1.1, phoneme edges +-15 ms, dropout {DROPOUT}, the sound
  left out of {SOUND_DROPOUT:.0%} of the lines, noise {BAND_NOISE} on its log energies.
- **Command**: `{info["command"]}` (seed {info["seed"]}; {info["seconds"]:.0f} s on this
  project's 2-core CPU, {info["date"]}).

## Results

Pearson r per clip (mean) between the product's ARKit channel and the tracked real mouth,
at the video's frames where a face was tracked: jawOpen with `jaw_open`, mouthLowerDownLeft
with `lips_apart`, mouthFunnel + mouthPucker with `funnel` + `pucker`; ARKit r: the mean over
the {len(info["arkit"])} ARKit channels the product takes from the model ({", ".join(info["arkit"]) or "none"}; it learned {", ".join(info["learned_arkit"]) or "none"}, and keeps all but mouthClose, which the rules' seal makes, and those whose measure the table follows better on the validation lines)
of r with the face landmarker's own score of that channel (sets built with blendshapes; nan
without). Closures: p/b/m whose mouthPress reaches 1 within 20 ms of the phone. Every row is the
same line, timed by the same aligned phonemes; "learned" hears the clip's sound as bake, say
and track do, "learned, phonemes only" is the same model without it (a timeline re-animated
from its file), "learned, ARKit by table" makes every ARKit channel from the learned controls
(data/viseme_controls.json's table, as a model without blendshapes does).

{HEADER}
{chr(10).join(rows)}

Reproduce: `.venv/bin/python benchmarks/motion_grid.py NAME=DS ...` (the same numbers, with
the speed).
""", encoding="utf-8")  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("train_sets", nargs="+", type=Path, metavar="TRAIN_DS")
    p.add_argument("--test", nargs="*", default=[], metavar="NAME=DS", help="unseen speakers")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "motion.onnx")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds", type=int, default=3, help="nets trained (seed, seed+1, ...), averaged"
    )
    args = p.parse_args(argv)

    began = time.time()
    lines = sorted({x.id: x for ds in args.train_sets for x in load(ds)}.values(),
                   key=lambda x: x.id)  # fmt: skip
    parts = {name: [x for x in lines if LR.split_of(x.id) == name] for name in LR.SPLITS}
    tests = {k: load(v) for k, v in (t.split("=", 1) for t in args.test)}
    arkit = Arkit.of(parts["train"])
    print(f"train {len(parts['train'])}, validation {len(parts['validation'])}, test "
          f"{len(parts['test'])}; unseen: {', '.join(f'{k} {len(v)}' for k, v in tests.items())}")  # fmt: skip
    nets, best = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        seen = []
        nets.append(train(parts["train"], epochs=args.epochs, seed=seed, arkit=arkit,
                          validation=parts["validation"],
                          log=lambda line, seen=seen: (print(line, flush=True),
                                                       seen.append(line))))  # fmt: skip
        best.append(max(seen, key=lambda s: float(s.rsplit(" ", 1)[1])) if seen else "none")
    net = Averaged(nets).eval()
    best = "; ".join(f"seed {args.seed + i}: {b}" for i, b in enumerate(best))
    keep = kept(net, arkit, parts["validation"])
    export_onnx(net, args.out, {"epochs": args.epochs, "seed": args.seed, "seeds": args.seeds},
                arkit, keep)  # fmt: skip
    tracked = sum(bool(x.blendshapes) for x in parts["train"])
    shipped, results = motion.MotionModel.load(args.out), []  # measured as the product runs it
    for name, group in [("seen speaker, test split", parts["test"]), *tests.items()]:
        results.append((name, evaluate(shipped, group), len(group)))
        print("\n".join(_rows(*results[-1])), flush=True)
    card = write_card(args.out.with_suffix(".md"), {
        "results": results, "params": sum(q.numel() for q in net.parameters()),
        "epochs": args.epochs, "seed": args.seed, "seeds": args.seeds, "best": best,
        "arkit": arkit.only(keep).names, "learned_arkit": arkit.names, "with_blendshapes": tracked,
        **LR.card_facts(parts, tests, began, "train_motion.py", argv),
    })  # fmt: skip
    print(f"wrote {args.out} and {card} ({time.time() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the live motion model: the sound's log-mel bands -> the ten mouth controls, causally.

    .venv/bin/python models/train_live_motion.py TRAIN_DS [TRAIN_DS ...]
        --out models/motion_live.onnx [--test NAME=DS ...] [--epochs N] [--seed S]

The data and split are models/train_motion.py's (GRID clips built by `lipsync dataset build`:
the tracked mouth controls per video frame, the clip's sound on the same clock). The model
hears only the sound: log-mel bands (bridge_server.mouth.sync.log_mel) scaled by the training
set's mean and spread per band (stored in the model: live sound has no future to z-score
over), through causal dilated convolutions (each output sees RECEPTIVE hops of the past) and
is trained to give the mouth LOOKAHEAD hops before its newest hop: it may hear 20 ms ahead.
Besides the ten controls it says where the lips close (p, b, m) and where the lip touches the
teeth (f, v), trained on the aligned phonemes: live, those contacts are put on top of the
controls as the offline motion puts the rules' on top.
Augmentation: gain +-12 dB (a log-mel shift), dropout. Contact frames weigh 3x in their loss. The card compares it, at the video's
frames, with the offline model and the rules on the same clips (both of those are given the
aligned phonemes, which live sound does not have).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "models"):  # run as a script from anywhere; the other trainers too
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import train_motion as TM  # noqa: E402  (models/: data, split, evaluation)
from torch import nn  # noqa: E402

from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.media.audio import load_audio  # noqa: E402
from bridge_server.mouth import listen  # noqa: E402
from bridge_server.mouth.controls import CONTROLS, visemes_from_controls  # noqa: E402
from bridge_server.mouth.listen import controls_dict  # noqa: E402
from bridge_server.mouth.sync import HOP_S, MELS, log_mel  # noqa: E402

LOOKAHEAD = 2  # hops the model may hear after the moment it shows (20 ms: p50 under 60 ms)
DILATIONS = (1, 2, 4, 8, 16)
RECEPTIVE = 4 + 2 * sum(DILATIONS) + 1  # hops of the past each output sees
GAIN_DB = 12.0
CONTACT_WEIGHT = 0.2  # of the contacts' cross-entropy beside the controls' squared error
CONTACT_POSITIVE = 3.0  # a contact frame counts this much more: a missed closure is the worst
ARKIT_EPOCHS = 60  # of the ARKit head on the frozen features (validation ARKit r: 10 -> 0.47, 30 -> 0.57, 60 -> 0.60)
ARKIT = load_set("arkit")


def load(ds: str) -> list[tuple]:
    """(line, its (A, 40) log-mel) for every usable clip of a dataset folder."""
    folder = Path(ds).expanduser()
    items = []
    for line in TM.load(folder):
        audio = load_audio(folder / "clips" / line.id / "audio.wav")
        items.append((line, log_mel(audio.samples, audio.sample_rate)))
    return items


class Causal(nn.Conv1d):
    """A convolution that sees only the present and the past."""

    def __init__(self, cin: int, cout: int, k: int, dilation: int = 1):
        super().__init__(cin, cout, k, dilation=dilation)
        self.left = (k - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self.left, 0)))


class LiveNet(nn.Module):
    """(B, A, 40) -> controls (B, A, 10), contacts (B, A, 2: lips closed, lip on teeth) and,
    once given an ARKit head (`arkit`), its channels (B, A, K), all 0..1, by causal
    convolutions; row i is the mouth at hop i - LOOKAHEAD."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.inp = Causal(MELS, width, 5)
        self.blocks = nn.ModuleList(Causal(width, width, 3, d) for d in DILATIONS)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Conv1d(width, len(CONTROLS) + len(listen.CONTACTS), 1)
        self.arkit: nn.Conv1d | None = None  # added after the mouth is learned (train)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = torch.relu(self.inp(x.transpose(1, 2)))
        for block in self.blocks:
            h = h + self.drop(torch.relu(block(h)))
        y = torch.sigmoid(self.out(h)).transpose(1, 2)
        heads = [y[..., : len(CONTROLS)], y[..., len(CONTROLS) :]]
        if self.arkit is not None:
            heads.append(torch.sigmoid(self.arkit(h)).transpose(1, 2))
        return tuple(heads)


def rows_of(line) -> np.ndarray:
    """The output rows that show the line's video frames."""
    return np.rint(line.times / HOP_S).astype(int) + LOOKAHEAD


def contacts_of(line, rows: int) -> np.ndarray:
    """(rows, 2) targets: 1 where the row shows a p/b/m (lips closed) or an f/v (lip on teeth)."""
    y = np.zeros((rows, len(listen.CONTACTS)), np.float32)
    for p in line.phonemes:
        for k, sounds in enumerate(listen.CONTACTS.values()):
            if p.ipa in sounds:
                a = int(round(p.start / HOP_S)) + LOOKAHEAD
                y[a : max(a + 1, int(round(p.end / HOP_S)) + LOOKAHEAD), k] = 1.0
    return y


def train(items, mean, std, arkit: TM.Arkit, *, epochs: int, seed: int, log=print) -> LiveNet:
    """First the controls and contacts; then, given ARKit channels, a head of their own on the
    same features, frozen: learned together, the channels moved the contacts (3 more of 25
    closures heard on the LibriVox reading, but 30 ms later at the median); this way the
    controls, contacts and their timing stay exactly as the first stage left them."""
    with TM.LR.deterministic(seed) as rng:
        net = LiveNet()
        _fit(net, net.parameters(), items, mean, std, rng, epochs, _mouth_loss, log)
        targets = {line.id: arkit.targets(line) for line, _ in items}  # None: no blendshapes
        tracked = [item for item in items if targets[item[0].id] is not None]
        if arkit.names and tracked:
            net.requires_grad_(False)  # the features stay as the first stage left them
            net.arkit = nn.Conv1d(net.out.in_channels, len(arkit.names), 1)

            def arkit_loss(line, heads, i, rows, m):
                y = torch.from_numpy(targets[line.id])[m]
                return ((heads[2][i, rows][m] - y) ** 2).mean()

            _fit(net, net.arkit.parameters(), tracked, mean, std, rng, ARKIT_EPOCHS, arkit_loss,
                 log, frozen=True)  # fmt: skip
        net.eval()
    return net


def _mouth_loss(line, heads, i, rows, m) -> torch.Tensor:
    """Squared error of the controls on tracked frames, and the contacts' weighted
    cross-entropy."""
    out, touch = heads[:2]
    seen = (out[i, rows][m] - torch.from_numpy(line.controls)[m]) ** 2
    heard = torch.from_numpy(contacts_of(line, touch.shape[1]))
    weight = 1.0 + (CONTACT_POSITIVE - 1.0) * heard
    touched = nn.functional.binary_cross_entropy(touch[i], heard, weight=weight)
    return seen.mean() + CONTACT_WEIGHT * touched


def _fit(net, params, items, mean, std, rng, epochs, loss_of, log, batch=32, frozen=False):
    """Adam on `params` over `items` in shuffled batches, each line at a random gain; `frozen`:
    the rest of the net as it is (no dropout)."""
    opt = torch.optim.Adam(params, lr=2e-3)
    for epoch in range(epochs):
        net.train(not frozen)
        total = 0.0
        for start in range(0, len(items), batch):
            chosen = [items[i] for i in rng.permutation(len(items))[start : start + batch]]
            width = max(len(m) for _, m in chosen) + LOOKAHEAD + 1
            x = torch.zeros(len(chosen), width, MELS)
            for i, (_, m) in enumerate(chosen):
                gain = rng.uniform(-GAIN_DB, GAIN_DB) / 10 * np.log(10)  # dB -> natural log
                x[i, : len(m)] = torch.from_numpy(((m + gain - mean) / std).astype(np.float32))
            heads = net(x)
            loss = sum(
                loss_of(line, heads, i, np.clip(rows_of(line), 0, width - 1), torch.from_numpy(line.valid))
                for i, (line, _) in enumerate(chosen)
            ) / len(chosen)  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        log(f"{'ARKit ' if frozen else ''}epoch {epoch + 1:3d}: loss {total:.4f}")


def heard(net: nn.Module, line, m, mean, std) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The net's (controls, contacts, ARKit channels) for every output row of a clip."""
    with torch.no_grad():
        x = torch.from_numpy(((m - mean) / std).astype(np.float32))[None]
        out, touch, *shapes = (
            t[0].numpy() for t in net(nn.functional.pad(x, (0, 0, 0, LOOKAHEAD + 1)))
        )
    return out, touch, shapes[0] if shapes else np.zeros((len(out), 0), np.float32)


HOWS = ("learned", TABLE := TM.TABLE)  # ARKit: the learned channels, or all from the controls


def evaluate(net: nn.Module, items, mean, std, names=(), keep=None) -> dict:
    """Mean Pearson r per clip of the live model's controls with the tracked ones: jaw, lips
    apart, rounding (funnel + pucker); the p/b/m whose closure it heard (over 0.5 within 20 ms
    of the phone); and for the ARKit set as the stream makes it, with the learned channels
    (`keep` of `names`) or all of them by the table from the controls: the same measures
    (train_motion.MEASURES) and "arkit", the mean r of the learned channels with the tracker's
    blendshape scores."""
    keep = list(range(len(names))) if keep is None else keep
    found = {"jaw": [], "lips apart": [], "rounding": [], "closures": [0, 0]}
    found |= {how: {k: [] for k in (*TM.MEASURES, "arkit")} for how in HOWS}
    pick = {"jaw": ("jaw_open",), "lips apart": ("lips_apart",), "rounding": ("funnel", "pucker")}
    for line, m in items:
        out, touch, shapes = heard(net, line, m, mean, std)
        for p in (p for p in line.phonemes if p.ipa in listen.CONTACTS["closed"]):
            a = int(round(p.start / HOP_S)) + LOOKAHEAD
            near = touch[max(a - 2, 0) : int(round(p.end / HOP_S)) + LOOKAHEAD + 3, 0]
            found["closures"][0] += bool(len(near) and near.max() > 0.5)
            found["closures"][1] += 1
        at = np.clip(rows_of(line), 0, len(out) - 1)
        got, v = out[at], line.valid
        for name, cols in pick.items():
            idx = [CONTROLS.index(c) for c in cols]
            found[name].append(TM.pearson(got[v][:, idx].sum(1), line.controls[v][:, idx].sum(1)))
        table = visemes_from_controls(controls_dict(got), ARKIT)
        learned = table | {names[i]: shapes[at, i] for i in keep}
        for how, ch in zip(HOWS, (learned, table)):
            for name, (ours, theirs) in TM.MEASURES.items():
                a = sum(ch[c] for c in ours)[v]
                b = sum(line.controls[:, CONTROLS.index(c)] for c in theirs)[v]
                found[how][name].append(TM.pearson(a, b))
            if keep and line.blendshapes:
                found[how]["arkit"].append(np.nanmean(
                    [TM.pearson(ch[names[i]][v], line.blendshapes[names[i]][v]) for i in keep]))  # fmt: skip
    mean_of = lambda v: float(np.nanmean(v)) if len(v) else float("nan")  # noqa: E731
    return {k: v if k == "closures" else {h: mean_of(x) for h, x in v.items()}
            if isinstance(v, dict) else mean_of(v) for k, v in found.items()}  # fmt: skip


def kept(net: nn.Module, names: list[str], validation, mean, std) -> list[int]:
    """The learned ARKit channels the stream takes (indices into `names`), by the offline
    model's rule (train_motion.keepers): never mouthClose (live, the contacts' closed shape
    makes it), nor those of a measure that the table's channels, made from the live controls,
    follow more closely on the validation clips."""
    return TM.keepers(names, evaluate(net, validation, mean, std, names))


class _Outputs(nn.Module):
    """The net's heads as the run time reads them: controls, contacts, the kept ARKit columns."""

    def __init__(self, net: LiveNet, keep: list[int]):
        super().__init__()
        self.net, self.keep = net, keep

    def forward(self, x: torch.Tensor):
        out, touch, *shapes = self.net(x)
        return (out, touch, shapes[0][..., self.keep]) if shapes and self.keep else (out, touch)


def export_onnx(net: LiveNet, path: Path, mean, std, metadata: dict, arkit: TM.Arkit | None = None,
                keep: list[int] | None = None) -> Path:  # fmt: skip
    """ONNX: input "mel" (1, A, 40); outputs "controls" (1, A, 10), "contacts" (1, A, 2) and,
    when it learned them, "arkit" (1, A, K): the `keep` channels of `arkit`, named (with the
    tracker's scores 0 and 1 stand for) in the metadata."""
    import onnx

    keep = keep or []
    outputs = ["controls", "contacts"] + (["arkit"] if keep else [])
    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Outputs(net.eval(), keep), (torch.zeros(1, 64, MELS),), str(tmp), input_names=["mel"],
            output_names=outputs, dynamic_axes={"mel": {1: "hops"}} | {o: {1: "hops"} for o in outputs},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(tmp))
    meta = {"features_version": listen.FEATURES_VERSION, "lookahead_hops": LOOKAHEAD,
            "receptive_hops": RECEPTIVE, "mel_mean": json.dumps(np.round(mean, 5).tolist()),
            "mel_std": json.dumps(np.round(std, 5).tolist()), "controls": json.dumps(CONTROLS),
            **metadata}  # fmt: skip
    if keep:
        meta |= arkit.only(keep).metadata()
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("train_sets", nargs="+", metavar="TRAIN_DS")
    p.add_argument("--test", nargs="*", default=[], metavar="NAME=DS", help="unseen speakers")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "motion_live.onnx")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    began = time.time()
    items = sorted({x.id: (x, m) for ds in args.train_sets for x, m in load(ds)}.values(),
                   key=lambda item: item[0].id)  # fmt: skip
    parts = {name: [(x, m) for x, m in items if TM.LR.split_of(x.id) == name]
             for name in ("train", "validation", "test")}  # fmt: skip
    tests = {k: load(v) for k, v in (t.split("=", 1) for t in args.test)}
    every = np.concatenate([m for _, m in parts["train"]])
    mean, std = every.mean(axis=0), np.maximum(every.std(axis=0), 1e-3)
    print(f"train {len(parts['train'])}, test {len(parts['test'])}; unseen: "
          f"{', '.join(f'{k} {len(v)}' for k, v in tests.items())}", flush=True)  # fmt: skip
    arkit = TM.Arkit.of([x for x, _ in parts["train"]])
    net = train(parts["train"], mean, std, arkit, epochs=args.epochs, seed=args.seed,
                log=lambda line: print(line, flush=True))  # fmt: skip
    keep = kept(net, arkit.names, parts["validation"], mean, std) if arkit.names else []
    learned = ", ".join(arkit.names[i] for i in keep) or "none"
    print(f"ARKit channels learned: {learned}", flush=True)
    rows = []
    for name, items in [("seen speaker, test split", parts["test"]), *tests.items()]:
        r = evaluate(net, items, mean, std, arkit.names, keep)
        shut, total = r["closures"]
        rows.append(f"| {name} | {len(items)} | {r['jaw']:.3f} | {r['lips apart']:.3f} | "
                    f"{r['rounding']:.3f} | {shut}/{total} | {r['learned']['arkit']:.3f} / "
                    f"{r[TABLE]['arkit']:.3f} | {r['learned']['rounding']:.3f} / "
                    f"{r[TABLE]['rounding']:.3f} |")  # fmt: skip
        print(rows[-1], flush=True)
    export_onnx(net, args.out, mean, std, {"epochs": args.epochs, "seed": args.seed}, arkit, keep)
    card = args.out.with_suffix(".md")
    card.write_text(f"""# Live motion model card: `models/motion_live.onnx`

The sound's 40 log-mel bands per 10 ms -> the ten mouth controls, causally: each output sees
{RECEPTIVE} hops of the past and {LOOKAHEAD} hops ({LOOKAHEAD * 10} ms) ahead of the moment
it shows. `lipsync osc --live --motion learned` and `POST /osc/live` use it
(`bridge_server/mouth/listen.py`); no recogniser, so any language. For ARKit rigs it also
gives the mouth channels it learned from the face landmarker's blendshape scores ({learned});
the stream's other ARKit channels come from the controls by the table.

- **Data**: GRID (Cooke, Barker, Cunningham, Shao 2006, CC BY 4.0), speaker s1, the split of
  `train_motion.py` (train {len(parts["train"])} clips); never seen: {"; ".join(f"{k} ({len(v)} clips)" for k, v in tests.items()) or "none"}.
- **Model**: {sum(q.numel() for q in net.parameters()):,} parameters; causal dilated 1-D
  convolution, dilations {DILATIONS}; the bands scaled by the training set's mean and spread
  (stored in the model). Squared error on tracked frames; Adam 2e-3, {args.epochs} epochs;
  gain +-{GAIN_DB:g} dB. Then the ARKit head (a 1x1 convolution over the same features, which
  stay frozen, so the controls and contacts are the first stage's) on the clips with
  blendshape scores, {ARKIT_EPOCHS} epochs.
- **Command**: `python models/train_live_motion.py {" ".join(argv or sys.argv[1:])}` (seed
  {args.seed}; {time.time() - began:.0f} s on this project's 2-core CPU,
  {datetime.date.today().isoformat()}).

## Results

Mean Pearson r per clip between the model's controls and the tracked mouth at the video's
frames (jaw_open; lips_apart; funnel + pucker); closures heard: the p/b/m (of the sound's
alignment) where its closed-lips output passes 0.5 within 20 ms. ARKit r: the learned channels
with the landmarker's own scores for them, learned / made by the table from the live controls
(clips built with blendshapes); ARKit rounding r: mouthFunnel + mouthPucker with the tracked
funnel + pucker, the same two ways. The offline model and the rules, with the
aligned phonemes, are in `models/motion.md`; latency is `benchmarks/live_latency.py`'s.

| set | clips | jaw r | lips apart r | rounding r | closures heard | ARKit r learned / table | ARKit rounding r learned / table |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
""", encoding="utf-8")  # fmt: skip
    print(f"wrote {args.out} and {card} ({time.time() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

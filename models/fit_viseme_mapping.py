"""Fit how a measured mouth becomes a viseme set's weights: the metric and ridge of
`controls.mix_of`, per set, on tracked GRID faces; writes bridge_server/data/viseme_mapping.json
and its card, models/viseme_mapping.md.

    .venv/bin/python models/fit_viseme_mapping.py TRAIN_DS [--test NAME=DS ...]

The prototypes (data/viseme_controls.json) say what each shape looks like on a rig and stay
as drawn: fitted freely, they turn into a basis of single controls ("AI" all lips, no jaw),
which reproduces the face but no longer means its viseme. What is fitted is how the mix is
judged: a weight per control (is a jaw that misses by 0.1 worse than a pucker that does?) and
the ridge and sparsity of the mix (controls.mix_of), under one constraint: a mouth exactly in
one shape is still read as that shape (or as one that looks the same). Objective: per clip Pearson r between the mix's controls
(weights x prototypes, what the rig will show) and the tracked ones, for jaw opening (counted
twice: the most visible), lips apart, rounding, closure, spread and lip raise, on the train
split of TRAIN_DS (train_lipreader's fixed split); validation and every --test set are only
measured. Coordinate search in log space: numpy only, deterministic, about a minute a set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "models"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import train_lipreader as LR  # noqa: E402
from train_motion import pearson  # noqa: E402

from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.mouth.controls import (  # noqa: E402
    CONTROLS,
    prototypes,
    viseme_weights_from_controls,
)

OUT = ROOT / "bridge_server" / "data" / "viseme_mapping.json"
CARD = ROOT / "models" / "viseme_mapping.md"
SETS = ("oculus15", "rhubarb", "preston_blair", "vrm5")
MEASURES = {  # name: (controls summed, weight in the objective)
    "jaw": (("jaw_open",), 2.0),
    "lips apart": (("lips_apart",), 1.0),
    "rounding": (("funnel", "pucker"), 1.0),
    "closure": (("mouth_close",), 1.0),
    "spread": (("smile_left", "smile_right", "stretch"), 0.5),
    "lip raise": (("upper_lip_raise", "lower_lip_raise"), 0.5),
}
LOOK_ALIKE = 0.99
START = {"metric": dict.fromkeys(CONTROLS, 1.0), "ridge": 0.01, "sparsity": 0.05}  # not fitted


def clips(ds: str, split: str | None = None) -> list[np.ndarray]:
    """(N, 10) tracked controls of each clip (frames with a face), of one split or all."""
    return [c.controls[c.valid].astype(float) for c in LR.load_dataset(ds)
            if c.valid.sum() > 2 and (split is None or LR.split_of(c.id) == split)]  # fmt: skip


def shown(c: np.ndarray, vset, mapping: dict) -> np.ndarray:
    """The controls the rig shows: the viseme weights of `c` (frames) times the prototypes."""
    w = viseme_weights_from_controls(dict(zip(CONTROLS, c.T)), vset, mapping)
    return sum(w[v][:, None] * p for v, p in prototypes(vset.name).items())


def measure(data: list[np.ndarray], vset, mapping: dict) -> dict[str, float]:
    """Mean r per clip of each measure (NaN where the tracked measure does not move)."""
    found = {k: [] for k in MEASURES}
    every = shown(np.concatenate(data), vset, mapping)  # all frames at once: one solve
    for c, r in zip(data, np.split(every, np.cumsum([len(c) for c in data])[:-1])):
        for name, (cols, _) in MEASURES.items():
            idx = [CONTROLS.index(k) for k in cols]
            found[name].append(pearson(r[:, idx].sum(1), c[:, idx].sum(1)))
    return {k: float(np.nanmean(v)) for k, v in found.items()}


def reads_back(vset, mapping: dict) -> bool:
    """A mouth exactly in one of the set's shapes is read as that shape, or as one that looks
    the same at another strength (cosine >= LOOK_ALIKE: oculus15's nn is 0.6 x kk), the fit's
    constraint."""
    protos = prototypes(vset.name)
    c = np.array(list(protos.values()))
    w = viseme_weights_from_controls(dict(zip(CONTROLS, c.T)), vset, mapping)
    names = [v for v in w if v != vset.rest]
    best = c[[list(protos).index(names[i]) for i in np.argmax([w[v] for v in names], axis=0)]]
    cosine = (c * best).sum(1) / np.linalg.norm(c, axis=1) / np.linalg.norm(best, axis=1)
    return bool((cosine >= LOOK_ALIKE).all())


def objective(found: dict[str, float]) -> float:
    return sum(MEASURES[k][1] * v for k, v in found.items()) / sum(w for _, w in MEASURES.values())


def fit(data: list[np.ndarray], vset, rounds: int = 4) -> dict:
    """Coordinate search: each log parameter x2 and /2, then x1.41 and /1.41, ..."""
    mapping = json.loads(json.dumps(START))
    assert reads_back(vset, mapping), vset.name
    best = objective(measure(data, vset, mapping))
    keys = [("metric", k) for k in CONTROLS] + [("ridge", None), ("sparsity", None)]
    for step in 2.0 ** (1.0 / 2.0 ** np.arange(rounds)):
        for group, key in keys:
            for f in (step, 1 / step):
                trial = json.loads(json.dumps(mapping))
                if key is None:
                    trial[group] *= f
                else:
                    trial["metric"][key] *= f
                got = objective(measure(data, vset, trial))
                if got > best + 1e-4 and reads_back(vset, trial):
                    mapping, best = trial, got
                    break
    mapping["metric"] = {k: round(v, 4) for k, v in mapping["metric"].items()}
    for key in ("ridge", "sparsity"):
        mapping[key] = round(mapping[key], 5)
    return mapping


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train", help="a dataset folder of `lipsync dataset build`")
    ap.add_argument("--test", nargs="*", default=[], metavar="NAME=DS")
    ap.add_argument("--subset", type=int, default=200, help="train clips the search reads")
    ap.add_argument("--out", type=Path, default=OUT, help="the mapping (default: the shipped one)")
    ap.add_argument("--card", type=Path, default=CARD)
    args = ap.parse_args(argv)
    train = clips(args.train, "train")[: args.subset] or clips(args.train)  # tiny sets: all
    tests = {"s1 validation": clips(args.train, "validation")}
    tests |= {name: clips(ds) for name, ds in (t.split("=", 1) for t in args.test)}
    tests = {name: data for name, data in tests.items() if data}
    fitted, rows, t0 = {}, [], time.time()
    for name in SETS:
        vset = load_set(name)
        fitted[name] = fit(train, vset)
        print(f"{name}: {fitted[name]}  ({time.time() - t0:.0f} s)", flush=True)
        for test, data in tests.items():
            for how, mapping in (("least squares", START), ("fitted", fitted[name])):
                got = measure(data, vset, mapping)
                rows.append((name, test, how, len(data), got, objective(got)))
                print(f"  {test:14s} {how:14s} " + " ".join(f"{v:.3f}" for v in got.values()))
    about = ("Per viseme set, how controls.mix_of judges a mix of the set's prototypes "
             "(viseme_controls.json) against a measured mouth: a weight per control, a ridge "
             "and a sparsity. "
             f"Written by models/fit_viseme_mapping.py on {len(train)} tracked GRID clips of "
             f"{Path(args.train).name}'s train split; models/viseme_mapping.md measures it.")  # fmt: skip
    args.out.write_text(json.dumps({"about": about, "sets": fitted}, indent=2) + "\n")
    write_card(args.card, rows, len(train), args, time.time() - t0)
    return 0


def write_card(path: Path, rows, n_train: int, args, seconds: float) -> None:
    head = "| set | measured on | mapping | clips | " + " | ".join(f"{k} r" for k in MEASURES)
    lines = [head + " | objective |", "|" + "---|" * (len(MEASURES) + 5)]
    for name, test, how, n, got, obj in rows:
        cells = " | ".join(f"{v:.3f}" for v in got.values())
        lines.append(f"| {name} | {test} | {how} | {n} | {cells} | {obj:.3f} |")
    tests = " ".join(f"--test {t}" for t in args.test)
    path.write_text(f"""# Viseme mapping card: `bridge_server/data/viseme_mapping.json`

How a mouth, tracked on video or made by the motion model, becomes a viseme set's weights:
the mix of the set's shapes (their prototypes, `bridge_server/data/viseme_controls.json`) that
looks most like it, in a metric fitted on real faces (`models/fit_viseme_mapping.py`, whose
docstring says what is fitted and why the prototypes are not).

- **Data**: GRID (Cooke et al. 2006, CC BY 4.0) clips built with `lipsync dataset build`;
  fitted on {n_train} clips of s1's train split, measured on s1's validation split and on
  speakers it never saw.
- **Measure**: Pearson r per clip (mean) between what the rig shows (weights x prototypes) and
  the tracked controls: jaw_open; lips_apart; funnel + pucker; mouth_close; smile + stretch;
  upper + lower lip raise. Objective: their weighted mean (jaw twice, spread and raise half).
  "least squares": the same mix, every control weighted alike, ridge 0.01, sparsity 0.05 (not fitted).
- **Command**: `.venv/bin/python models/fit_viseme_mapping.py {args.train} {tests}`
  ({seconds:.0f} s on this project's 2-core CPU).

{chr(10).join(lines)}
""")


if __name__ == "__main__":
    raise SystemExit(main())

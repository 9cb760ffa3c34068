"""Train the A/V sync model: a window of the sound and a window of the lips -> embeddings that
are close when in sync, far when shifted (SyncNet's idea on the project's lip geometry).

    .venv/bin/python models/train_sync.py TRAIN_DS [TRAIN_DS ...] --out models/sync.onnx
        [--test NAME=DS ...] [--epochs N] [--seed S]

TRAIN_DS: folders `lipsync dataset build` wrote (clips/<id>/audio.wav, frames.npz); the clips of
the lip reader's train split (models/train_lipreader.py `split_of`) train, its validation split
picks the epoch. GRID is recorded in sync, so each clip's own sound is the positive and the same
sound shifted by 1 frame to 1 s either way the negatives: the loss is the cross-entropy of
telling the true alignment among 51 (every video frame of shift from -1 s to +1 s).

Inputs (bridge_server.mouth.sync, the ONE definition the run time uses): 5 video frames of the
lip reader's features (200 ms at 25 fps) and 20 frames of 40-band log-mel (10 ms hop, 200 ms),
each normalised per clip. Two small MLPs to 64 numbers each, cosine similarity. One ONNX
graph: inputs "lips" (1, T, 5*F) and "sound" (1, A, 20*40), outputs "lips_embedding" (1, T, 64)
and "sound_embedding" (1, A, 64). The card (models/sync.md) is written by hand from the printed
numbers and benchmarks/video_sync.py.
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
import train_lipreader as LR  # noqa: E402  (models/: its dataset loading and split)
from torch import nn  # noqa: E402

from bridge_server.media.audio import load_audio  # noqa: E402
from bridge_server.mouth import sync as sm  # noqa: E402

REACH = round(sm.MAX_OFFSET_S / (sm.HOP_S * sm.HOPS_PER_FRAME))  # 25 frames at 25 fps
SHIFTS = np.arange(-REACH, REACH + 1)  # video frames from -1 s to +1 s; 0 is the truth


def load(ds: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(id, lip windows (T, 5F), sound windows at each video frame's 4 audio hops (A, 800))."""
    out = []
    for clip in LR.load_dataset(ds):
        audio = load_audio(Path(ds).expanduser() / "clips" / clip.id / "audio.wav")
        lips = sm.lip_windows(clip.controls, clip.valid, clip.lips)
        sound = sm.sound_windows(audio.samples, audio.sample_rate)
        out.append((clip.id, lips, sound))
    return out


class SyncNet(nn.Module):
    def __init__(self, width: int = 128, dim: int = sm.EMBEDDING):
        super().__init__()
        self.lips = nn.Sequential(nn.Linear(sm.LIP_WINDOW_FEATURES, width), nn.ReLU(),
                                  nn.Dropout(0.2), nn.Linear(width, dim))  # fmt: skip
        self.sound = nn.Sequential(nn.Linear(sm.SOUND_WINDOW_FEATURES, width), nn.ReLU(),
                                   nn.Dropout(0.2), nn.Linear(width, dim))  # fmt: skip

    def forward(self, lips, sound):
        return (nn.functional.normalize(self.lips(lips), dim=-1),
                nn.functional.normalize(self.sound(sound), dim=-1))  # fmt: skip


def clip_logits(net, lips, sound, temperature=0.1):
    """(T, 51) similarity of each video frame's lips with the sound at each shift."""
    v, a = net(torch.from_numpy(lips), torch.from_numpy(sound))
    sim = v @ a.T  # (T, A)
    t = np.arange(len(lips))
    idx = (sm.HOPS_PER_FRAME * (t[:, None] + SHIFTS[None, :])).clip(0, len(sound) - 1)
    ok = (t[:, None] + SHIFTS[None, :] >= 0) & (
        sm.HOPS_PER_FRAME * (t[:, None] + SHIFTS[None, :]) < len(sound)
    )
    logits = sim[torch.from_numpy(t)[:, None], torch.from_numpy(idx)] / temperature
    return logits.masked_fill(~torch.from_numpy(ok), -1e4)


def train(clips, epochs: int, seed: int, validation=(), log=print):
    with LR.deterministic(seed) as rng:
        net = SyncNet()
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-2)
        target = int(np.flatnonzero(SHIFTS == 0)[0])
        best, state = np.inf, None
        for epoch in range(epochs):
            net.train()
            total = 0.0
            for i in rng.permutation(len(clips)):
                _, lips, sound = clips[i]
                noisy = lips + rng.normal(0, 0.05, lips.shape).astype(np.float32)
                logits = clip_logits(net, noisy, sound)
                loss = nn.functional.cross_entropy(logits, torch.full((len(lips),), target))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.item())
            if validation:
                err = np.mean([abs(offset_ms(net, lips, sound)) for _, lips, sound in validation])
                log(
                    f"epoch {epoch + 1}: loss {total / len(clips):.3f}, validation |offset| {err:.1f} ms"
                )
                if err < best:
                    best, state = err, {k: v.clone() for k, v in net.state_dict().items()}
        if state is not None:
            net.load_state_dict(state)
        net.eval()
    return net


def offset_ms(net, lips, sound, shift_hops: int = 0) -> float:
    """The offset the model finds with the sound moved `shift_hops` 10 ms hops later."""
    net.eval()
    with torch.no_grad():
        v, a = net(torch.from_numpy(lips), torch.from_numpy(sm.shift(sound, shift_hops)))
    return sm.best_offset(v.numpy(), a.numpy()).offset_ms


def export_onnx(net: SyncNet, path: Path, metadata: dict) -> Path:
    import onnx

    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(), (torch.zeros(1, 8, sm.LIP_WINDOW_FEATURES), torch.zeros(1, 30, sm.SOUND_WINDOW_FEATURES)),
            str(tmp), input_names=["lips", "sound"], output_names=["lips_embedding", "sound_embedding"],
            dynamic_axes={"lips": {1: "frames"}, "sound": {1: "hops"},
                          "lips_embedding": {1: "frames"}, "sound_embedding": {1: "hops"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(tmp))
    for key, value in {"features_version": sm.FEATURES_VERSION, **metadata}.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


SHIFTS_MS = (-400, -200, -80, 0, 80, 200, 400)


def evaluate(net, clips) -> dict:
    """Per known shift: the share of clips within 40 and 80 ms of it."""
    rows = {}
    for shift in SHIFTS_MS:
        errors = [abs(offset_ms(net, lips, sound, shift // 10) - shift) for _, lips, sound in clips]
        rows[shift] = (
            np.mean(np.array(errors) <= 40),
            np.mean(np.array(errors) <= 80),
            float(np.median(errors)),
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("train_sets", nargs="+", type=Path)
    p.add_argument("--test", nargs="*", default=[], metavar="NAME=DS")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "sync.onnx")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    began = time.time()
    clips = sorted({c[0]: c for ds in args.train_sets for c in load(ds)}.values())
    parts = {n: [c for c in clips if LR.split_of(c[0]) == n] for n in LR.SPLITS}
    tests = {k: load(Path(v).expanduser()) for k, v in (t.split("=", 1) for t in args.test)}
    print(
        f"train {len(parts['train'])}, validation {len(parts['validation'])}; loaded in {time.time() - began:.0f} s"
    )
    net = train(parts["train"], args.epochs, args.seed, parts["validation"])
    results = {"seen speaker, test split": evaluate(net, parts["test"])}
    results |= {name: evaluate(net, group) for name, group in tests.items()}
    for name, rows in results.items():
        print(name, json.dumps({k: [round(x, 3) for x in v] for k, v in rows.items()}))
    export_onnx(
        net,
        args.out,
        {"epochs": args.epochs, "seed": args.seed, "date": datetime.date.today().isoformat()},
    )
    print(f"wrote {args.out} ({time.time() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Text -> timeline for both voices: speed, timing exactness, and lip closures.

    .venv/bin/python benchmarks/text_to_timeline.py [--sentences N]

Tables:
1. speed: x realtime = seconds of speech produced / seconds of wall time for the whole
   `say` pipeline (synthesis, phonemes, visemes, curves, timeline JSON), voice loading excluded
   and reported on its own;
2. timing: every phone start the synthesiser reported in the same run (eSpeak: PHONEME event
   samples; Piper: cumulative per-phoneme sample counts from the model) against the nearest
   phoneme start in the timeline JSON (after writing and reading it back), in ms; and how many
   timeline phonemes start between events (eSpeak reports "ɑːɹ" as one event: we split it);
3. closures: for every p/b/m, the frame where the closed-lips channel peaks and its value;
4. acoustics, independent of what the synthesiser says: after a stop's silent closure the sound
   gets loud at the release and vowel; where that happens against the timeline's vowel start
   shows how well the times fit the sound itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge_server import engines, pipeline  # noqa: E402
from bridge_server.core.curves import frame_times  # noqa: E402
from bridge_server.core.timeline import Timeline  # noqa: E402
from bridge_server.core.visemes import load_set  # noqa: E402

SENTENCES = Path(__file__).resolve().parents[1] / "tests" / "data" / "harvard.txt"
FPS = 24


STOPS, VOWELS = set("pbtdkɡ"), set("aɑæɛeɪiɔoʊuʌəɜɐ")


def onset_offsets_ms(audio: np.ndarray, sr: int, tl: Timeline) -> list[float]:
    """For each stop + vowel: when the sound gets loud (half the vowel's peak loudness, 5 ms
    windows) minus the timeline's vowel start. Tight and near 0 means the times fit the sound."""
    win, hop = int(0.005 * sr), int(0.001 * sr)
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(float), win)[::hop]
    env = np.sqrt((frames**2).mean(axis=1))
    out = []
    for a, b in zip(tl.phonemes, tl.phonemes[1:]):
        if a.ipa in STOPS and b.ipa[0] in VOWELS and a.end - a.start > 0.03:
            lo, hi = int(a.start * 1000), int(b.end * 1000)
            vowel = env[int(b.start * 1000) : hi]
            if len(vowel) and hi <= len(env):
                loud = np.flatnonzero(env[lo:hi] >= 0.5 * vowel.max())
                out.append((lo + loud[0]) - b.start * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sentences", type=int, default=23)
    args = ap.parse_args()
    sentences = SENTENCES.read_text().splitlines()[: args.sentences]
    vset = load_set("oculus15")
    rows_speed, rows_timing, closures, rows_acoustic = [], [], [], []
    for name in ("espeak", "piper"):
        t0 = time.perf_counter()
        engines.create(name).synthesize("Warm up.")
        load_s = time.perf_counter() - t0
        audio_s = wall_s = 0.0
        diffs, between = [], 0
        onsets = []
        for text in sentences:
            t0 = time.perf_counter()
            speech, tl = pipeline.say(text, engine=name, fps=FPS)
            tl = Timeline.from_json(tl.to_json())
            wall_s += time.perf_counter() - t0
            audio_s += speech.duration
            onsets += onset_offsets_ms(speech.audio, speech.sample_rate, tl)
            starts = np.array([p.start for p in tl.phonemes])
            diffs += [np.abs(starts - e).min() * 1000 for e in speech.events]
            events = np.array(speech.events)
            between += sum(np.abs(events - s).min() > 5e-4 for s in starts)
            times = frame_times(tl.fps, tl.duration)
            pp = tl.curve(vset.closed).sample(times)
            opened = np.max(
                [c.sample(times) for c in tl.curves if c.channel not in ("sil", "PP")], axis=0
            )
            for p in tl.phonemes:
                if p.ipa in ("p", "b", "m"):
                    inside = np.flatnonzero(
                        (times >= p.start - 0.5 / FPS) & (times < p.end + 0.5 / FPS)
                    )
                    k = inside[np.argmax(pp[inside])] if len(inside) else int(np.argmax(pp))
                    closures.append(
                        (
                            name,
                            text[:28],
                            p.ipa,
                            p.start,
                            p.end,
                            int(k),
                            float(pp[k]),
                            float(opened[k]),
                        )
                    )
        rows_acoustic.append((name, len(onsets), *np.percentile(onsets, [10, 50, 90])))
        diffs = np.array(diffs)
        rows_speed.append((name, len(sentences), audio_s, wall_s, audio_s / wall_s, load_s))
        rows_timing.append(
            (name, len(diffs), np.median(diffs), np.percentile(diffs, 99), diffs.max(), between)
        )

    print("\n1. Text -> timeline speed (x realtime of the produced audio; higher is faster)")
    print(
        f"{'voice':<8}{'lines':>6}{'audio s':>9}{'wall s':>8}{'x realtime':>12}{'voice load s':>14}"
    )
    for r in rows_speed:
        print(f"{r[0]:<8}{r[1]:>6}{r[2]:>9.2f}{r[3]:>8.2f}{r[4]:>12.1f}{r[5]:>14.2f}")
    ratio = rows_speed[0][4] / rows_speed[1][4]
    print(f"espeak is {ratio:.0f}x faster than piper in this run")

    print("\n2. Timeline phoneme starts vs the synthesiser's own events (ms)")
    print(f"{'voice':<8}{'events':>7}{'median':>8}{'p99':>8}{'max':>8}{'split phones':>14}")
    for r in rows_timing:
        print(f"{r[0]:<8}{r[1]:>7}{r[2]:>8.3f}{r[3]:>8.3f}{r[4]:>8.3f}{r[5]:>14}")

    print(f"\n3. Lip closures: every p/b/m, the frame ({FPS} fps) where '{vset.closed}' peaks")
    print(
        f"{'voice':<8}{'line':<30}{'ph':<4}{'start':>7}{'end':>7}{'peak frame':>11}{'value':>7}{'most open':>10}"
    )
    for c in closures:
        print(
            f"{c[0]:<8}{c[1]:<30}{c[2]:<4}{c[3]:>7.3f}{c[4]:>7.3f}{c[5]:>11}{c[6]:>7.3f}{c[7]:>10.3f}"
        )
    for name in ("espeak", "piper"):
        vals = [c[6] for c in closures if c[0] == name]
        most_open = max(c[7] for c in closures if c[0] == name)
        print(
            f"{name}: {len(vals)} closures, {sum(v >= 0.999 for v in vals)} reach 1.0, min {min(vals):.3f}; open shapes at most {most_open:.3f} there"
        )

    print("\n4. Acoustic check: loudness onset after a stop minus the timeline's vowel start (ms)")
    print(f"{'voice':<8}{'pairs':>6}{'p10':>8}{'median':>8}{'p90':>8}")
    for r in rows_acoustic:
        print(f"{r[0]:<8}{r[1]:>6}{r[2]:>8.1f}{r[3]:>8.1f}{r[4]:>8.1f}")


if __name__ == "__main__":
    main()

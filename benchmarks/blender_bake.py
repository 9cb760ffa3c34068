"""Press Bake to keys: how long the add-on takes for a 10 s line, and where the time goes.

    .venv/bin/python benchmarks/blender_bake.py [--seconds 10] [--repeat 3]

Runs the add-on in the bpy module (Blender 5.0.1) against a real bridge (`lipsync serve` in
its own process) on a mesh with the 15 VRChat viseme shape keys, and bakes a line of about
--seconds three ways: a typed text (eSpeak speaks it), a recording with its script, and a
recording without one (Whisper). The baseline, in the same run, is the same analysis called
in-process (bridge_server.pipeline.say / bake): what the line costs without Blender or HTTP.
Prints the median over --repeat runs:

- bake: bpy.ops.lipsync.bake() from call to return (keys written, sound strip added);
- analysis: the in-process baseline; overhead = bake - analysis (HTTP, upload, polling, keys);
- x realtime: line length / bake time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_server.media.audio import wav_bytes  # noqa: E402
from bridge_server.pipeline import bake, say  # noqa: E402
from tests.bridge import running_bridge  # noqa: E402

SENTENCES = ROOT / "tests" / "data" / "harvard.txt"
VRCHAT = "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split()


def line_of(seconds: float) -> str:
    """Harvard sentences, as many as eSpeak needs for about `seconds`."""
    words, text = SENTENCES.read_text().split(), ""
    for n in range(4, len(words), 4):
        text = " ".join(words[:n])
        if say(text)[0].duration >= seconds:
            break
    return text


def setup_scene(bpy, url: str):
    import addon_utils

    bpy.ops.wm.read_homefile(use_empty=True)
    if bpy.context.preferences.addons.get("blender_addon") is None:
        addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.url, prefs.autostart = url, False
    mesh = bpy.data.meshes.new("Head")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("Head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for v in VRCHAT:
        obj.shape_key_add(name=f"vrc.v_{v}")
    bpy.context.view_layer.objects.active = obj
    return bpy.context.scene


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    import bpy

    text = line_of(a.seconds)
    speech, _ = say(text)
    folder = Path(tempfile.mkdtemp())
    wav = folder / "line.wav"
    wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    cases = {  # name -> (panel settings, the same analysis in-process)
        "text (eSpeak)": ({"source": "TEXT", "text": text}, lambda: say(text)),
        "audio + script": (
            {"source": "AUDIO", "audio_path": str(wav), "script": text},
            lambda: bake(wav, text=text),
        ),
        "audio, Whisper": ({"source": "AUDIO", "audio_path": str(wav)}, lambda: bake(wav)),
    }
    rows = []
    with running_bridge() as url:
        sys.path.insert(0, str(ROOT))
        for name, (panel, baseline) in cases.items():
            scene = setup_scene(bpy, url)
            for key, value in panel.items():
                setattr(scene.lipsync, key, value)
            bpy.ops.lipsync.bake()  # warm: models load once per bridge
            baked = timed(bpy.ops.lipsync.bake, a.repeat)
            analysis = timed(baseline, a.repeat)
            rows.append((name, baked, analysis))
    print(f"line: {speech.duration:.1f} s, 15 shape keys, median of {a.repeat}\n")
    print("| source | bake s | analysis in-process s | overhead s | x realtime |")
    print("|---|---|---|---|---|")
    for name, baked, analysis in rows:
        print(
            f"| {name} | {baked:.2f} | {analysis:.2f} | {baked - analysis:+.2f} "
            f"| {speech.duration / baked:.1f} |"
        )


if __name__ == "__main__":
    main()

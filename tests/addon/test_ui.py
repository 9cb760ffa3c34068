"""The add-on in Blender's own UI (Debian's Blender 3.4 under Xvfb): the modal bake with its
worker thread and progress, undo, and cancel."""

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.skipif(
    not (shutil.which("blender") and shutil.which("xvfb-run")),
    reason="needs Blender and Xvfb (apt-get install blender xvfb xauth)",
)
LONG = SHARED / "librivox_kittens" / "shorted-threelittlekittens_01_rountreesmith.ogg"


def test_bake_in_the_ui_then_undo_then_a_cancelled_bake(bridge_url, tmp_path):
    out = tmp_path / "report.json"
    run = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", "blender", "--factory-startup",
         "--python", str(ROOT / "tests" / "addon" / "ui_session.py"), "--", str(ROOT), bridge_url,
         str(LONG), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "error" not in report, report["error"]
    assert report["invoke"] == ["RUNNING_MODAL"]  # Blender stays usable while the bridge works
    assert report["baked"] == "Head: Bob put the big..."
    assert report["after_undo"] is None  # one undo step returns to before the bake
    assert report["running_before_cancel"]
    assert report["after_cancel"] is None  # cancelled: nothing keyed, no action, no sound strip
    assert report["actions"] == []  # undo took the first one away with its keys
    assert report["strips"] == 0


SHORT = SHARED / "librivox_kittens" / "en_male_electricity.ogg"  # "Electricity."
# The screenshots are the README's; a run writes them there only when asked, so the suite leaves
# the working tree as it found it: LIPSYNC_DOCS_IMAGES=1 pytest tests/addon/test_ui.py
IMAGES = ROOT / "docs" / "images" if os.environ.get("LIPSYNC_DOCS_IMAGES") else None


def test_the_panel_is_legible_at_the_default_sidebar_width(bridge_url, tmp_path):
    """Blender 3.4's own UI draws the panel in the sidebar at its default width: every text the
    panel measured fits its room, the Mapping list filled on selection, Transcribe filled the
    Script, Check Sync found a late sound that Shift Sound moved, in one undo step; the
    sidebar screenshots are cropped (to docs/images/ with LIPSYNC_DOCS_IMAGES=1). (5.0's fonts:
    test_addon.py.)"""
    from PIL import Image

    from tests.videos import late_sound

    video = late_sound(SHARED / "grid" / "videos" / "pwij3p.mpg", tmp_path / "late.mkv", 0.2)
    run = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x1100x24", "blender", "--factory-startup",
         "--enable-event-simulate", "--python", str(ROOT / "tests" / "addon" / "panel_session.py"),
         "--", str(ROOT), bridge_url, str(SHORT), str(video), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = tmp_path / "report.json"
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "error" not in report, report["error"]
    assert report["sidebar_px"] == round(220 * report["scale"])  # Blender's default width
    assert report["mapping_on_selection"] == 15  # before any Detect, without asking the bridge
    assert "electricity" in report["transcript"].lower()
    need, room = report["old_status"]
    assert need > room  # the measure catches what Blender cut before ("Bridge:...")
    for name, shot in report["shots"].items():
        cut = [(text, need, room) for text, need, room in shot["drawn"] if need > room + 0.01]
        assert cut == [], name
        assert any(text == "Language" for text, _, _ in shot["drawn"]), name  # labelled
        x, width, height = shot["sidebar"]
        sidebar = Image.open(shot["path"]).crop((x, 0, x + width, height))
        sidebar.save((IMAGES or tmp_path) / f"panel_blender34_{name}.png")
    assert set(report["shots"]) == {"text", "progress", "audio", "video"}
    assert report["sync_ms"] == pytest.approx(200, abs=40)
    frames = round(report["sync_ms"] * report["fps"] / 1000)
    assert (report["shifted"], report["after_undo"]) == (1 - frames, 1)

"""The add-on in Blender's own UI (Debian's Blender 3.4 under Xvfb): the modal bake with its
worker thread and progress, undo, and cancel."""

import json
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

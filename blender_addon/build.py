"""Build the installable zips of the add-on (plain Python, no Blender needed):

    python blender_addon/build.py [--out dist]
    python blender_addon/build.py --options   # refresh options.json (from the repo, venv)

- lipsync-<version>.zip: a Blender 4.2+ extension (blender_manifest.toml at the top);
  install with Edit > Preferences > Get Extensions > Install from Disk.
- lipsync-<version>-legacy.zip: a legacy add-on (a lipsync/ folder) for Blender 3.4 to 4.1;
  install with Edit > Preferences > Add-ons > Install.

Both carry options.json, the snapshot of the bridge's choices (bridge_server.pipeline.choices())
the add-on's properties are built from, and the rig presets (rigs/*.json, to Load into the Mapping list offline). Neither
carries the repository's demo (demo/: the demo head and contact sheet, and its preset).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RIGS = HERE.parent / "rigs"
OPTIONS = HERE / "options.json"
SKIP = {"build.py", "demo_head.json"}  # files by name
SKIP_DIRS = {"demo", "__pycache__"}  # folders anywhere below the add-on


def files() -> list[tuple[Path, str]]:
    """(file on disk, path inside the add-on) for everything the add-on needs."""
    found = [(p, p.relative_to(HERE).as_posix()) for p in sorted(HERE.rglob("*")) if _kept(p)]
    return found + [(p, f"rigs/{p.name}") for p in sorted(RIGS.glob("*.json")) if _kept(p)]


def _kept(path: Path) -> bool:
    inside = path.relative_to(HERE.parent).parts
    return path.is_file() and path.name not in SKIP and not SKIP_DIRS & set(inside)


def version() -> str:
    text = (HERE / "blender_manifest.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def build(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for name, prefix in (
        (f"lipsync-{version()}.zip", ""),
        (f"lipsync-{version()}-legacy.zip", "lipsync/"),
    ):
        path = out / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for source, inside in files():
                z.write(source, prefix + inside)
        made.append(path)
    return made


def options_text() -> str:
    """options.json as it should be: the bridge's choices. Imports bridge_server, so only from
    the repository with its virtual environment (build.py is not in the zips)."""
    sys.path.insert(0, str(HERE.parent))
    from bridge_server.pipeline import choices

    return json.dumps(choices(), indent=2) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description="Build the add-on's installable zips.")
    p.add_argument("--out", type=Path, default=HERE.parent / "dist", help="folder (default dist/)")
    p.add_argument("--options", action="store_true",
                   help="instead, rewrite options.json from bridge_server (needs its venv)")  # fmt: skip
    a = p.parse_args()
    if a.options:
        OPTIONS.write_text(options_text(), encoding="utf-8")
        print(OPTIONS)
        return
    for path in build(a.out):
        print(path)


if __name__ == "__main__":
    main()

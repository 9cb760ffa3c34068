"""Build the installable zips of the add-on (plain Python, no Blender needed):

    python blender_addon/build.py [--out dist]

- lipsync-<version>.zip: a Blender 4.2+ extension (blender_manifest.toml at the top);
  install with Edit > Preferences > Get Extensions > Install from Disk.
- lipsync-<version>-legacy.zip: a legacy add-on (a lipsync/ folder) for Blender 3.4 to 4.1;
  install with Edit > Preferences > Add-ons > Install.

Both carry the rig presets (rigs/*.json) so the demo head and mapping presets work offline.
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RIGS = HERE.parent / "rigs"
SKIP = {"build.py"}


def files() -> list[tuple[Path, str]]:
    """(file on disk, path inside the add-on) for everything the add-on needs."""
    found = [
        (p, p.relative_to(HERE).as_posix())
        for p in sorted(HERE.rglob("*"))
        if p.is_file() and p.name not in SKIP and "__pycache__" not in p.parts
    ]
    return found + [(p, f"rigs/{p.name}") for p in sorted(RIGS.glob("*.json"))]


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


def main() -> None:
    p = argparse.ArgumentParser(description="Build the add-on's installable zips.")
    p.add_argument("--out", type=Path, default=HERE.parent / "dist", help="folder (default dist/)")
    for path in build(p.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()

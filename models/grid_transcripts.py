"""Transcripts TSVs for `lipsync dataset build` from GRID's word alignments or file names.

    .venv/bin/python models/grid_transcripts.py align ALIGN_DIR SPEAKER > s1.tsv
    .venv/bin/python models/grid_transcripts.py names VIDEO_DIR SPEAKER > s4.tsv

`align`: one row per `NAME.align` (start end word, silences `sil`/`sp` left out) for the video
`NAME.mpg`. `names`: GRID file names spell the sentence (bbaf2n = bin blue at f two now), for
clips that come without alignments. Columns: file, transcript, speaker.
"""

from __future__ import annotations

import sys
from pathlib import Path

SLOTS = (  # the letter of each word in a GRID file name, slot by slot (the letter is itself)
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    None,
    {
        "z": "zero",
        **{
            str(d): w
            for d, w in enumerate("zero one two three four five six seven eight nine".split())
            if d
        },
    },  # fmt: skip
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)


def from_align(path: Path) -> str:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return " ".join(w for _, _, w in rows if w not in ("sil", "sp"))


def from_name(stem: str) -> str:
    code = stem[-6:]
    return " ".join(code[i] if table is None else table[code[i]] for i, table in enumerate(SLOTS))


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("align", "names"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, folder, speaker = argv[0], Path(argv[1]), argv[2]
    print("file\ttranscript\tspeaker")
    if kind == "align":
        for path in sorted(folder.glob("*.align")):
            print(f"{path.stem}.mpg\t{from_align(path)}\t{speaker}")
    else:
        for path in sorted(folder.glob("*.mpg")):
            print(f"{path.name}\t{from_name(path.stem)}\t{speaker}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

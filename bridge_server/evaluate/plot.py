"""A picture of an evaluation: our segments above the reference's, coloured by viseme, with a
line from each reference boundary to ours (green within 20 ms, orange within 50, red beyond)."""

from __future__ import annotations

import io

from ..core.animate import held_cues
from ..core.errors import require
from ..core.timeline import Timeline
from ..formats.plot import INSTALL
from .references import Reference, Span, label_ipa, word_key
from .scores import (
    align,
    phone_pairs,
    reference_cues,
    target_set,
)

_ROWS = {"ours": 1.0, "reference": 0.0}
_HEIGHT = 0.6


def plot_comparison(timeline: Timeline, ref: Reference, viseme_set: str | None = None) -> bytes:
    """PNG bytes: phones when the reference has them, else mouth cues, else words."""
    require("matplotlib", INSTALL)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vset = target_set(timeline, ref, viseme_set)
    ours, theirs, bounds, what = _rows(timeline, ref, vset)
    names = list(vset.visemes)
    colours = plt.get_cmap("tab20").colors
    end = max(ref.end(), timeline.duration)
    fig, ax = plt.subplots(figsize=(min(40.0, 6.0 + 4.0 * end), 2.8))
    for row, spans in (("ours", ours), ("reference", theirs)):
        _segments(ax, spans, _ROWS[row], [colours[names.index(v) % 20] if v in names else
                                          "0.85" for *_, v in spans], end / 150)  # fmt: skip
    _errors(ax, bounds)
    ax.set_yticks([_ROWS["ours"] + _HEIGHT / 2, _ROWS["reference"] + _HEIGHT / 2])
    ax.set_yticklabels(["ours", "reference"])
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds")
    colours_of = "" if what == "words" else f" ({vset.name} colours)"
    ax.set_title(f"{what}{colours_of}: ours against {ref.path}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _segments(ax, spans: list, y: float, colours: list, min_label_s: float) -> None:
    """One bar collection per row; labels only where a segment is wide enough to read."""
    ax.broken_barh([(s, e - s) for _, s, e, _ in spans], (y, _HEIGHT), facecolors=colours,
                   edgecolor="white")  # fmt: skip
    for label, start, stop, _ in spans:
        if stop - start >= min_label_s:
            ax.text((start + stop) / 2, y + _HEIGHT / 2, label, ha="center", va="center",
                    fontsize=7, clip_on=True)  # fmt: skip


def _errors(ax, bounds: dict[float, float]) -> None:
    """A line from each reference boundary up to ours, coloured by its error."""
    from matplotlib.collections import LineCollection

    lines = [[(r, _HEIGHT), (o, _ROWS["ours"])] for r, o in bounds.items()]
    errors_ms = [abs(o - r) * 1000 for r, o in bounds.items()]
    colours = [
        "tab:green" if e <= 20 else "tab:orange" if e <= 50 else "tab:red" for e in errors_ms
    ]
    ax.add_collection(LineCollection(lines, colors=colours, linewidths=1.2))


def _rows(timeline: Timeline, ref: Reference, vset) -> tuple[list, list, dict[float, float], str]:
    """(label, start, end, viseme) rows for ours and theirs, and boundary pairs."""
    if ref.phones:
        _, _, _, bounds = phone_pairs(timeline, ref)
        ours = [(p.ipa, p.start, p.end, vset.viseme_for(p.ipa)) for p in timeline.phonemes]
        theirs = [
            (s.label, s.start, s.end, vset.viseme_for(label_ipa(s.label, ref.alphabet)))
            for s in ref.phones
        ]
        return ours, theirs, bounds, "phones"
    if ref.cues:
        mine = [Span(c.viseme, c.start, c.end) for c in held_cues(timeline, vset)]
        theirs_cues = reference_cues(ref, vset)
        return _as_rows(mine), _as_rows(theirs_cues), _nearest(theirs_cues, mine), "mouth cues"
    words = [Span(w.text, w.start, w.end) for w in timeline.words]
    return _as_rows(words, ""), _as_rows(ref.words, ""), _word_bounds(ref.words, words), "words"


def _as_rows(spans: list[Span], viseme: str | None = None) -> list:
    return [(s.label, s.start, s.end, s.label if viseme is None else viseme) for s in spans]


def _nearest(theirs: list[Span], ours: list[Span], reach: float = 0.1) -> dict[float, float]:
    """Each reference cue change to the nearest cue change of ours within `reach` seconds."""
    mine = [s.start for s in ours[1:]]
    out = {}
    for s in theirs[1:]:
        near = min(mine, key=lambda t: abs(t - s.start), default=None)
        if near is not None and abs(near - s.start) <= reach:
            out[s.start] = near
    return out


def _word_bounds(theirs: list[Span], ours: list[Span]) -> dict[float, float]:
    a = [Span(word_key(s.label), s.start, s.end) for s in theirs]
    b = [Span(word_key(s.label), s.start, s.end) for s in ours]
    out = {}
    for i, j in align(a, b):
        out[a[i].start], out[a[i].end] = b[j].start, b[j].end
    return out

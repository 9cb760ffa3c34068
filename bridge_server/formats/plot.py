"""A picture of a timeline: waveform with words, viseme curves, phonemes along the bottom."""

from __future__ import annotations

import io

import numpy as np

from ..core.errors import require
from ..core.timeline import Timeline

INSTALL = "pip install matplotlib  (or ./setup.sh)"


def plot_png(timeline: Timeline, audio: np.ndarray | None = None, sample_rate: int = 0) -> bytes:
    """PNG bytes; channels that never rise above 5% are left out to keep the plot readable."""
    require("matplotlib", INSTALL)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = min(40.0, 6.0 + 4.0 * timeline.duration)
    video = bool(timeline.mouth_controls)  # a tracked face: its mouth controls get a panel
    fig, axes = plt.subplots(
        3 if video else 2,
        1,
        figsize=(width, 8.5 if video else 6),
        sharex=True,
        gridspec_kw={"height_ratios": [1, 1.5, 2] if video else [1, 2]},
    )
    top, bottom = axes[0], axes[-1]
    if video:
        _controls(axes[1], timeline, plt.get_cmap("tab10").colors)
    if audio is not None and len(audio):
        t = np.arange(len(audio)) / sample_rate
        step = max(1, len(audio) // 20000)
        top.plot(t[::step], audio[::step], color="0.4", linewidth=0.5)
    for w in timeline.words:
        top.axvspan(w.start, w.end, color="tab:blue", alpha=0.08)
        top.text(
            (w.start + w.end) / 2,
            0.9,
            w.text,
            ha="center",
            va="top",
            fontsize=9,
            transform=top.get_xaxis_transform(),
        )
    top.set_ylabel("audio")
    top.set_yticks([])

    times = np.linspace(0, timeline.duration, max(2, int(timeline.duration * 200)))
    colours = plt.get_cmap("tab20").colors
    for i, curve in enumerate(timeline.curves):
        values = curve.sample(times)
        if values.max() > 0.05:
            bottom.plot(
                times,
                values,
                label=curve.channel,
                linewidth=1.4,
                color=colours[i % 20],
                drawstyle="steps-post" if curve.interpolation == "constant" else "default",
            )
    for p in timeline.phonemes:
        bottom.axvline(p.start, color="0.85", linewidth=0.5, zorder=0)
        bottom.text(
            (p.start + p.end) / 2,
            -0.08,
            p.ipa,
            ha="center",
            va="top",
            fontsize=9,
            transform=bottom.get_xaxis_transform(),
        )
    bottom.set_ylim(-0.02, 1.05)
    bottom.set_xlim(0, timeline.duration)
    bottom.set_ylabel(f"{timeline.viseme_set} weight")
    bottom.set_xlabel("seconds", labelpad=18)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _controls(ax, timeline: Timeline, colours) -> None:
    """The tracked face's mouth controls, as measured from the video."""
    for i, curve in enumerate(timeline.mouth_controls):
        t = [k[0] for k in curve.keys]
        ax.plot(t, [k[1] for k in curve.keys], label=curve.channel, color=colours[i % 10], lw=1.2)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("video: mouth")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def activity_png(times, values, threshold: float, spans, title: str = "") -> bytes:
    """When the lips speak: the activity per frame, the threshold and the spans over it."""
    width = min(40.0, 4.0 + 2.0 * float(times[-1] if len(times) else 1))
    fig, ax, plt = _one_panel(width, 2.6, title)
    for a, b in spans:
        ax.axvspan(a, b, color="tab:green", alpha=0.15)
    ax.plot(times, values, color="tab:green", lw=1.5, label="lips speaking")
    ax.axhline(threshold, color="0.5", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("seconds")
    return _png(fig, ax, plt)


def sync_png(curve, offset_ms: float, title: str = "") -> bytes:
    """The sync model's score at each offset of the sound, the best one marked."""
    fig, ax, plt = _one_panel(7.0, 2.8, title)
    ax.plot(curve[:, 0], curve[:, 1], color="tab:blue", lw=1.5)
    ax.axvline(offset_ms, color="tab:red", lw=1, label=f"best: {offset_ms:+.0f} ms")
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("sound offset, ms (+: the sound is late)")
    ax.set_ylabel("lips vs sound")
    return _png(fig, ax, plt)


def curves_png(times, curves: dict, title: str = "", ylabel: str = "") -> bytes:
    """Several curves over the same frames, one colour each (label -> values)."""
    width = min(40.0, 4.0 + 2.5 * float(times[-1] if len(times) else 1))
    fig, ax, plt = _one_panel(width, 3.0, title)
    for (label, values), colour in zip(
        curves.items(), ("0.2", "tab:orange", "tab:blue", "tab:green")
    ):
        ax.plot(times, values, color=colour, lw=2.0 if colour == "0.2" else 1.5, label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel(ylabel)
    return _png(fig, ax, plt)


def _one_panel(width: float, height: float, title: str):
    require("matplotlib", INSTALL)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_title(title, fontsize=9)
    return fig, ax, plt


def _png(fig, ax, plt) -> bytes:
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()

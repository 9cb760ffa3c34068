"""Speech with exact phone times: eSpeak NG saying random lines of dictionary words in many
English accents and voice variants, and Festival's and Flite's voices (Debian's `festival`,
`festvox-kallpc16k`, `festvox-kdlpc16k`, `festvox-us-slt-hts` and `flite`), as they are or
degraded the way real recordings are. Festival's diphone voices join diphones cut from a real
speaker's recordings, and Flite's awb, rms and slt voices model real speakers (CMU ARCTIC):
sounds nearer people's than eSpeak's formants. A voice is an eSpeak voice ("en-us+m3"),
"flite:NAME" or "festival:NAME".

Used to train the boundary model (models/train_boundaries.py) and to measure the whole bake on
voices it never saw (benchmarks/audio_to_timeline.py). eSpeak's own phone events are the truth,
with one correction: eSpeak starts a stop at its burst, and people (TIMIT, and the hand-labelled
speech we are judged on) start it where the lips or tongue close, so a stop's start moves back
to the start of the silence before its burst. No torch here: benchmarks import it.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

from bridge_server.core.phonemes import normalize
from bridge_server.core.timeline import Phoneme
from bridge_server.engines.espeak import EspeakVoice
from bridge_server.engines.piper import create_piper
from bridge_server.media.audio import Audio, load_audio
from bridge_server.speech import refine as R
from bridge_server.speech.recognize import _from_script  # the script's path only

log = logging.getLogger(__name__)

TRAIN_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-us-nyc")
TRAIN_VARIANTS = ("", "+m1", "+m3", "+f2", "+f5")
HELD_ACCENTS = ("en-gb-x-rp", "en-029")
HELD_VARIANTS = ("+m7", "+f4")
# Festival's and Flite's voices: ked's diphones (a speaker no other voice has) and slt are
# held out; kal_diphone is Festival's version of a speaker Flite's kal16 trains on.
TRAIN_OTHERS = ("flite:rms", "flite:awb", "flite:kal16")
HELD_OTHERS = ("festival:ked_diphone", "flite:slt", "festival:cmu_us_slt_arctic_hts")
# Debian's Festival voices of other languages: more real speakers' recorded diphones (Italian,
# Czech, Finnish), units (Russian) and an HTS voice (Catalan), saying the same English words by
# their own spelling rules. The English aligner cannot follow them, so they are trained on
# with aligner-like errors drawn around their exact boundaries (train_boundaries.py).
FOREIGN = ("festival:pc_diphone", "festival:lp_diphone", "festival:czech_dita",
           "festival:czech_krb", "festival:czech_machac", "festival:czech_ph",
           "festival:hy_fi_mv_diphone", "festival:suo_fi_lj_diphone",
           "festival:msu_ru_nsh_clunits", "festival:upc_ca_ona_hts")  # fmt: skip
FOREIGN_PACKAGES = ("festvox-italp16k festvox-itapc16k festvox-czech-dita festvox-czech-krb "
                    "festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv "
                    "festvox-ru festvox-ca-ona-hts")  # fmt: skip
# A phone of each broad class (refine.CLASSES): all the model is told of a phone is its class.
_OF_CTYPE = {"s": "t", "a": "tʃ", "f": "s", "n": "n", "l": "l", "r": "l"}
_STAND_IN = {1: "t", 2: "tʃ", 3: "s", 4: "n", 5: "l", 6: "a"}
_CZECH = {**dict.fromkeys("b d d~ g k p t t~ _".split(), "t"), **dict.fromkeys("c c~ dz dz~".split(), "tʃ"),
          **dict.fromkeys("m n n* n~".split(), "n"), **dict.fromkeys("j l r".split(), "l")}  # fmt: skip
_PAUSES = {"#", "pau", "h#", "sil"}
SILENT_DB = -50.0  # eSpeak's closures are digital silence; anything this quiet is one


def dictionary_words() -> list[str]:
    import pocketsphinx

    path = Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"
    words = {line.split()[0] for line in path.read_text().splitlines() if line.strip()}
    return sorted(w for w in words if w.isalpha() and w.isascii() and 3 <= len(w) <= 8)


def lines(n: int, rng: np.random.Generator, words: list[str]) -> list[str]:
    return [" ".join(rng.choice(words, rng.integers(5, 11))) for _ in range(n)]


def closure_starts(phonemes: list[Phoneme], audio: np.ndarray, rate: int) -> list[Phoneme]:
    """eSpeak's stops start at the burst; start them where the silence before it starts.
    Sample by sample: a smoothed level would let the burst leak into the closure's last hop."""
    quiet = np.abs(audio) < 10 ** (SILENT_DB / 20)
    out = list(phonemes)
    for i in range(1, len(out)):
        p, prev = out[i], out[i - 1]
        if R.phone_class(p.ipa) not in R.STOP_CLASSES or abs(prev.end - p.start) > 1e-6:
            continue
        k = int(p.start * rate)
        lo = max(int((p.start - 0.15) * rate), int((prev.start + 0.005) * rate))
        j = k
        while j > lo and quiet[j - 1]:
            j -= 1
        if (k - j) / rate >= 0.015:
            t = j / rate
            out[i - 1], out[i] = (
                Phoneme(prev.ipa, prev.start, t, prev.word),
                Phoneme(p.ipa, t, p.end, p.word),
            )
    return out


def noise_floor(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sound with white noise 40-70 dB below it. No recording is digitally silent, but
    the synthesisers' pauses and closures are: without a floor the model can learn that a
    pause or a stop starts where the samples turn to zero, a cue real speech never gives."""
    level = np.sqrt(np.mean(x.astype(np.float64) ** 2)) * 10 ** (-rng.uniform(40, 70) / 20)
    return (x + rng.standard_normal(len(x)) * level).astype(np.float32)


def degrade(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A random mix of what real recordings go through; returns the sound and its time scale."""
    scale = 1.0
    if rng.random() < 0.5:  # speed +-10%: every time scales
        scale = rng.uniform(0.9, 1.1)
        n = int(len(x) * scale)
        x = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)
    if rng.random() < 0.4:  # a room: exponentially decaying noise after the direct sound
        rt60 = rng.uniform(0.15, 0.6)
        t = np.arange(int(rt60 * rate)) / rate
        rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * rng.uniform(0.1, 0.4)
        rir[0] = 1.0
        x = np.convolve(x, rir)[: len(x)]
    if rng.random() < 0.25:  # telephone band
        spec = np.fft.rfft(x)
        f = np.fft.rfftfreq(len(x), 1 / rate)
        spec[(f < 300) | (f > 3400)] = 0
        x = np.fft.irfft(spec, len(x))
    if rng.random() < 0.6:  # noise, white or pink, 5-30 dB below the speech
        noise = rng.standard_normal(len(x))
        if rng.random() < 0.5:
            spec = np.fft.rfft(noise)
            spec /= np.sqrt(np.maximum(np.fft.rfftfreq(len(x)), 1e-3))
            noise = np.fft.irfft(spec, len(x))
        snr = rng.uniform(5, 30)
        noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr / 10))
        x = x + noise
    x = x * rng.uniform(0.2, 1.0) / max(np.abs(x).max(), 1e-6)
    return x.astype(np.float32), scale


def synthesize(voice: str, text: str) -> tuple[np.ndarray, int, list[Phoneme]]:
    return synthesize_lines(voice, [text])[0]


def synthesize_lines(voice: str, texts: list[str]) -> list[tuple[np.ndarray, int, list[Phoneme]]]:
    """(audio, sample rate, phonemes with their exact times) of each line in one voice."""
    kind, _, name = voice.rpartition(":")
    if kind == "flite":
        return [_flite(name, t) for t in texts]
    if kind == "festival" and voice in FOREIGN:
        return _festival_classes(name, texts)
    if kind == "festival":
        return _festival(name, texts)
    if kind == "piper":
        return [_said(create_piper(name).synthesize(t)) for t in texts]
    out = []
    for text in texts:
        audio, rate, phonemes = _said(EspeakVoice(voice, None).synthesize(text))
        out.append((audio, rate, closure_starts(phonemes, audio, rate)))
    return out


def _said(speech) -> tuple[np.ndarray, int, list[Phoneme]]:
    return np.asarray(speech.audio, np.float32), speech.sample_rate, speech.phonemes


def _flite(name: str, text: str) -> tuple[np.ndarray, int, list[Phoneme]]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        run = _run(["flite", "-voice", name, "-t", text, "-psdur", "-o", str(wav)])
        sound = load_audio(wav)
    ends = [(ph, float(t)) for ph, t in (x.rsplit(":", 1) for x in run.stdout.split())]
    return sound.samples, sound.sample_rate, _timed(ends)


def _festival(name: str, texts: list[str]) -> list[tuple[np.ndarray, int, list[Phoneme]]]:
    out = []
    for sound, segs in _festival_say(name, texts, lambda f: f'(utt.save.segs u "{f}")'):
        rows = segs.split("#", 1)[1].split()
        ends = [(rows[i + 2], float(rows[i])) for i in range(0, len(rows), 3)]
        out.append((sound.samples, sound.sample_rate, _timed(ends)))
    return out


def _festival_say(name: str, texts: list[str], save) -> list[tuple[Audio, str]]:
    """Each line's sound and segments (the Scheme `save(path)` writes them), from one Festival
    process for all the lines (loading a voice takes most of a second)."""
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{name})"] + [
            f'(set! u (Utterance Text "{t}")) (utt.synth u) '
            f'(utt.save.wave u "{tmp}/{k}.wav" \'riff) {save(f"{tmp}/{k}.segs")}'
            for k, t in enumerate(texts)
        ]
        (Path(tmp) / "lines.scm").write_text("\n".join(lines))
        _run(["festival", "-b", f"{tmp}/lines.scm"])
        return [(load_audio(Path(tmp) / f"{k}.wav"), (Path(tmp) / f"{k}.segs").read_text())
                for k in range(len(texts))]  # fmt: skip


def _festival_classes(name: str, texts: list[str]) -> list[tuple[np.ndarray, int, list[Phoneme]]]:
    """A foreign voice's lines, each phone a stand-in of its broad class (from the voice's
    phone set: vowel or not, consonant type; Czech's phone set has no type, so by name). Some
    words crash a voice's spelling rules (Finnish): those lines, retried alone, come back empty."""
    if not list(Path("/usr/share/festival/voices").glob(f"*/{name}")):
        raise SystemExit(f"Festival's voice {name} is missing: apt-get install {FOREIGN_PACKAGES}")
    out = []
    for k in range(0, len(texts), 25):
        try:
            out += _festival_run(name, texts[k : k + 25])
        except subprocess.CalledProcessError:
            for text in texts[k : k + 25]:
                try:
                    out += _festival_run(name, [text])
                except subprocess.CalledProcessError:
                    log.warning("Festival's %s cannot say %r", name, text)
                    out.append((np.zeros(0, np.float32), 16000, []))
    return out


def _festival_run(name: str, texts: list[str]) -> list[tuple[np.ndarray, int, list[Phoneme]]]:
    ctype = '"-"' if name.startswith("czech") else '(item.feat s "ph_ctype")'
    show = (f'(mapcar (lambda (s) (format fd "%s %f %s %s\\n" (item.name s) (item.feat s "end") '
            f'(item.feat s "ph_vc") {ctype})) (utt.relation.items u \'Segment))')  # fmt: skip
    said = _festival_say(name, texts, lambda f: f'(set! fd (fopen "{f}" "w")) {show} (fclose fd)')
    return [(sound.samples, sound.sample_rate, _classed([r.split() for r in segs.splitlines()]))
            for sound, segs in said]  # fmt: skip


def _classed(rows: list[list[str]]) -> list[Phoneme]:
    """Phonemes from (name, end, vowel?, consonant type) rows: each phone a stand-in of its
    class, a run of one phone (a geminate: no edge to hear) one phone, pauses the gaps."""
    out, start, last = [], 0.0, ""
    for name, end, vc, ctype in rows:
        t = float(end)
        if name in _PAUSES:
            ipa = ""
        elif vc == "+":
            ipa = "a"
        else:  # a consonant's type, else its name's class
            ipa = _OF_CTYPE.get(ctype) or _CZECH.get(name) or _STAND_IN[R.phone_class(name)]
        if ipa and name == last and out:
            out[-1] = Phoneme(ipa, out[-1].start, t, 0)
        elif ipa and t > start:
            out.append(Phoneme(ipa, start, t, 0))
        start, last = max(start, t), name
    return out


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise SystemExit(f"{cmd[0]} is missing: apt-get install festival festvox-kallpc16k "
                         "festvox-kdlpc16k festvox-us-slt-hts flite") from None  # fmt: skip


def _timed(ends: list[tuple[str, float]]) -> list[Phoneme]:
    """Phonemes from (ARPAbet phone, end time) in order; pauses are the gaps between them."""
    out, start = [], 0.0
    for phone, end in ends:
        if phone not in ("pau", "h#") and end > start:
            out.append(Phoneme(normalize(phone.upper(), "arpabet")[0], start, end, 0))
        start = end
    return out


def scaled(phonemes: list[Phoneme], scale: float) -> list[Phoneme]:
    return [Phoneme(p.ipa, p.start * scale, p.end * scale, p.word) for p in phonemes]


def lag(items: list[tuple[Audio, str, list[Phoneme]]]) -> float:
    """How much later a synthesiser puts its phones than they sound: the median of (its phone
    start - the aligned start) over boundaries into speech."""
    offsets = []
    for sound, text, truth in items:
        found = _from_script(sound, text, lambda *_: None)
        if found:
            offsets += [t - b.time for b, t in pairs(truth, found.phonemes) if b.right != 0]
    return float(np.median(offsets)) if offsets else 0.0


def pairs(truth: list[Phoneme], aligned: list[Phoneme]) -> list[tuple[R.Boundary, float]]:
    """Each aligned boundary with its true time (phones matched in order by broad class)."""
    a = [R.phone_class(p.ipa) for p in aligned]
    b = [R.phone_class(p.ipa) for p in truth]
    match = {}
    for i, j, n in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        match.update({i + k: j + k for k in range(n)})
    out = []
    for bd in R.boundaries(aligned):
        if bd.before >= 0 and bd.before in match:
            out.append((bd, truth[match[bd.before]].start))
        elif bd.before < 0 and bd.after in match:
            j = match[bd.after]
            pause_after = j + 1 >= len(truth) or truth[j + 1].start - truth[j].end > 1e-6
            if pause_after:
                out.append((bd, truth[j].end))
    return out

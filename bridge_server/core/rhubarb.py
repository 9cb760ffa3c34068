"""Rhubarb Lip Sync's animation rules: timed phones -> mouth shapes A-H and X.

A port of Rhubarb Lip Sync 1.14's animation stage (rhubarb/src/animation/*.cpp, MIT), so that
files in Rhubarb's formats show what Rhubarb users expect. Each phone offers a set of shapes
(data/rhubarb_rules.json); the shape chosen is the one nearest the previous shape; vowels are
anticipated up to 0.2 s; p and b close before their release; shapes too short to see are
retimed; pauses relax the mouth; in-betweens soften wide-open to closed; long static stretches
are broken up. Times are whole centiseconds, as in Rhubarb. Each rule can be switched off
(`rules=`) to measure what it costs or gains.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass

from .phonemes import DATA, VOWELS, ipa_arpabet, is_silence
from .timeline import Phoneme, VisemeCue

RULES = ("sets", "anticipation", "closures", "timing", "pauses", "tweens", "static")
ALL_RULES = frozenset(RULES)


@functools.cache
def table() -> dict:
    return json.loads((DATA / "rhubarb_rules.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Rule:
    """The shapes one stretch of a phone may show (Rhubarb's ShapeRule)."""

    shapes: str  # letters, e.g. "BF"
    phone: str | None = None  # Rhubarb's phone name; None for silence
    start: int = 0  # the phone's own timing, centiseconds
    end: int = 0

    @property
    def vowel(self) -> bool:
        return self.phone is not None and (
            self.phone in table()["vowels"] or self.phone.startswith("ipa:") and
            self.phone[4:5] in VOWELS
        )  # fmt: skip


class Track:
    """Values on whole centiseconds over [lo, hi): Rhubarb's continuous timelines."""

    def __init__(self, lo: int, hi: int, fill) -> None:
        self.lo, self.hi = lo, hi
        self.v = [fill] * (hi - lo)
        self._runs: list | None = None  # runs() of the values as they are now

    def set(self, start: int, end: int, value) -> None:
        start, end = max(start, self.lo), min(end, self.hi)
        if start < end:
            self.v[start - self.lo : end - self.lo] = [value] * (end - start)
            self._runs = None

    def at(self, t: int):
        return self.v[t - self.lo]

    def runs(self) -> list[tuple[int, int, object]]:
        """(start, end, value) of each run of equal values."""
        if self._runs is None:
            out, start = [], self.lo
            for i in range(1, len(self.v) + 1):
                if i == len(self.v) or self.v[i] != self.v[i - 1]:
                    out.append((start, self.lo + i, self.v[i - 1]))
                    start = self.lo + i
            self._runs = out
        return self._runs

    def copy(self) -> Track:
        return self.part(self.lo, self.hi)

    def part(self, lo: int, hi: int) -> Track:
        """A copy of [lo, hi)."""
        new = Track(lo, lo, None)
        new.hi, new.v = hi, self.v[lo - self.lo : hi - self.lo]
        return new


# --- phones -> shape rules (ShapeRule.cpp, animationRules.cpp getShapeSets) -----------------


def rhubarb_phones(phonemes: list[Phoneme], lead: float = 0.0) -> list[tuple[str, int, int]]:
    """Our IPA phonemes as Rhubarb's phones in centiseconds (a two-phone cell such as ɑɹ shares
    its time); a phoneme Rhubarb lacks is kept as 'ipa:<symbol>'."""
    out = []
    for p in phonemes:
        if is_silence(p.ipa):
            continue
        names = ["Schwa"] if p.ipa == "ə" else ipa_arpabet().get(p.ipa, f"ipa:{p.ipa}").split()
        start, end = round((p.start - lead) * 100), round((p.end - lead) * 100)
        cuts = [start + (end - start) * k // len(names) for k in range(len(names) + 1)]
        for name, s, e in zip(names, cuts, cuts[1:]):
            if e > s:
                short_ah = name == "AH" and e - s < table()["schwa_below"]
                out.append(("Schwa" if short_ah else name, s, e))
    return out


def shape_sets(phone: str, length: int, before: int, on: frozenset, own: str) -> list:
    """(start, end, shapes) relative to the phone's start; `own` is the phone's first-choice
    shape, the whole rule when Rhubarb's sets are off or the phone is not Rhubarb's."""
    spec = table()["phones"].get(phone) if "sets" in on else None
    if spec is None:
        return [(0, length, own)]
    limit = spec.get("shorter_than")
    if limit and length < limit[0]:
        spec = limit[1]
    if "like" in spec:
        return shape_sets(spec["like"], length, before, on, own)
    if "diphthong" in spec:
        cut = int(length * table()["diphthong_split"])
        return [(0, cut, spec["diphthong"][0]), (cut, length, spec["diphthong"][1])]
    if "plosive" in spec:
        if "closures" not in on:
            return [(0, length, spec["plosive"][0])]
        lo, hi = table()["occlusion"]
        hold = min(max(before // 2, lo), hi)
        return [(-hold, 0, spec["plosive"][0]), (0, length, spec["plosive"][1])]
    return [(0, length, spec["single"])]


def shape_rules(
    phones: list[tuple[str, int, int]], owns: list[str], n: int, on: frozenset
) -> tuple[Track, list[Rule]]:
    """Each centisecond's rule, as an index into the list of rules (0 is silence)."""
    rules = [Rule("X")]
    track = Track(0, n, 0)
    before, cursor = 0, 0
    for (phone, start, end), own in zip(phones, owns):
        if start > cursor:  # a silence counts as the phone before a plosive
            before = start - cursor
        for s, e, shapes in shape_sets(phone, end - start, before, on, own):
            rules.append(Rule(shapes, phone, start, end))
            track.set(start + s, start + e, len(rules) - 1)
        before, cursor = end - start, max(cursor, end)
    return track, rules


# --- shape choice and anticipation (roughAnimation.cpp) ------------------------------------


def closest(reference: str, shapes: str) -> str:
    return next(s for s in table()["effort"][reference] if s in shapes)


def animate_rough(rules_track: Track, rules: list[Rule], on: frozenset) -> Track:
    t = table()
    out = Track(rules_track.lo, rules_track.hi, "X")
    segs = rules_track.runs()
    reference, last_anticipated = "X", None
    for i, (start, end, rid) in enumerate(segs):
        rule = rules[rid]
        shape = closest(reference, rule.shapes)
        out.set(start, end, shape)
        anticipate = rule.vowel and len(rule.shapes) == 1
        if anticipate and "anticipation" in on:
            reference = shape
            for s, e, prev in reversed(segs[:i]):
                if s == last_anticipated or start - s > t["anticipation"]:
                    break
                anticipating = closest(reference, rules[prev].shapes)
                out.set(s, e, anticipating)
                if t["basic"][anticipating] != t["basic"][shape]:
                    break
                reference = anticipating
            last_anticipated = start
        reference = shape if anticipate else t["relax"][shape]
    return out


# --- retiming short shapes (timingOptimization.cpp) ----------------------------------------


def _clip(runs: list, lo: int, hi: int) -> list:
    return [(max(s, lo), min(e, hi), v) for s, e, v in runs if e > lo and s < hi]


def _join(runs: list) -> list:
    out: list = []
    for s, e, v in runs:
        if out and out[-1][2] == v and out[-1][1] == s:
            s = out.pop()[0]
        out.append((s, e, v))
    return out


def _representative(runs: list) -> str:
    weight: dict[str, int] = {}
    for s, e, v in runs:
        weight[v] = weight.get(v, 0) + e - s
    best = max(sorted(weight, key=table()["shapes"].index), key=lambda v: weight[v])
    return "D" if best == "C" and weight.get("D", 0) > 0 else best  # D says more than C


def _candidates(source: list, src: tuple[int, int], target: tuple[int, int], write: int):
    """The shortest time range whose shapes may be drawn next, ending at `write`."""
    shortest = table()["min_shape"]
    left = write - target[0]
    length = shortest if left <= shortest or left >= 2 * shortest else left // 2
    lo, hi = write - length, write
    if write == target[1]:
        hi = max(hi, src[1])
    if lo >= src[1]:
        lo = source[-1][0]
    if hi <= src[0]:
        hi = source[0][1]
    return lo, hi


def _reduction(source: list, lo: int, hi: int) -> tuple[list, str]:
    runs = _clip(source, lo, hi)
    return runs, _representative(runs)


def _next_reduction(source: list, src: tuple, target: tuple, write: int) -> tuple[list, str]:
    small = _reduction(source, *_candidates(source, src, target, write))
    extended = _reduction(source, small[0][0][0], small[0][-1][1])
    after = _reduction(source, *_candidates(source, src, target, small[0][0][0]))
    special = extended[1] != small[1] and extended[1] != after[1]
    return extended if extended[1] == small[1] or special else small


def retime(animation: Track, src: tuple[int, int], target: tuple[int, int]) -> list:
    """The shapes of `src` drawn into `target` from right to left, none shorter than can be
    seen (Rhubarb's retime)."""
    source = _clip(animation.runs(), *src)  # runs are joined already
    out = Track(target[0], target[1], "X")
    write = target[1]
    while write > target[0] and source:
        runs, shape = _next_reduction(source, src, target, write)
        lo, hi = runs[0][0], runs[-1][1]
        if lo <= src[0]:
            lo = min(lo, target[0])
        hi = min(hi, write)
        if lo >= hi:  # cannot happen in Rhubarb (its TimeRange would throw); never loop
            break
        out.set(lo, hi, shape)
        write = lo
    return out.runs()


def _state(shape: str) -> str:
    return "idle" if shape == "X" else "closed" if shape == "A" else "open"


def optimize_timing(animation: Track) -> Track:
    """Every open or closed stretch long enough to register (Rhubarb's optimizeTiming)."""
    t = table()
    shortest, reach = t["min_segment"], t["max_extension"]
    segs = _join([(s, e, _state(v)) for s, e, v in animation.runs()])
    out = Track(animation.lo, animation.hi, "X")
    result_start = animation.hi
    k = len(segs) - 1

    def draw(seg, lo, hi) -> None:
        for s, e, v in retime(animation, (seg[0], seg[1]), (lo, hi)):
            out.set(s, e, v)

    while k >= 0:
        seg = segs[k]
        if seg[2] == "idle":
            k -= 1
            continue
        result_start = min(seg[1], result_start)
        if result_start - seg[0] >= shortest:
            draw(seg, seg[0], result_start)
            result_start = seg[0]
            k -= 1
            continue
        end = k - 1  # gather the short segments to the left and share their time evenly
        while end >= 0 and segs[end][2] != "idle" and segs[end][1] - segs[end][0] < shortest:
            end -= 1
        wanted = shortest * (k - end) - (segs[k][1] - segs[end + 1][0])
        room = segs[end][1] - segs[end][0] - 1 if end >= 0 else 0
        target_start = segs[end + 1][0] - min(wanted, room, reach)
        for i in range(k, end, -1):
            length = _div(result_start - target_start, i - end)
            draw(segs[i], result_start - length, result_start)
            result_start -= length
        k = end
    return out


def _div(a: int, b: int) -> int:
    """C++ integer division (towards zero)."""
    return int(a / b)


# --- pauses and in-betweens (pauseAnimation.cpp, tweening.cpp) ------------------------------


def pause_shape(previous: str, following: str, length: int) -> str:
    pause = table()["pause"]
    if length < pause["hold_below"]:
        return previous
    if length <= pause["relax_upto"]:
        shape = previous
        while True:  # relax, but not into the shape that follows
            relaxed = table()["relax"][shape]
            if relaxed != following:
                return relaxed
            if relaxed == shape:
                break
            shape = relaxed
    return "X"


def animate_pauses(animation: Track) -> Track:
    out = animation.copy()
    runs = animation.runs()
    for (_, _, prev), (s, e, shape), (_, _, nxt) in zip(runs, runs[1:], runs[2:]):
        if shape == "X":
            out.set(s, e, pause_shape(prev, nxt, e - s))
    return out


def insert_tweens(animation: Track) -> Track:
    lo, hi = table()["tween_length"]
    tweens = {(a, b): (shape, timing) for a, b, shape, timing in table()["tweens"]}
    out = animation.copy()
    runs = animation.runs()
    for (s1, e1, a), (s2, e2, b) in zip(runs, runs[1:]):
        if (a, b) not in tweens:
            continue
        shape, timing = tweens[a, b]
        if timing == "early":
            length = min((e1 - s1) // 3, hi)
            start = e1 - length
        elif timing == "centered":
            length = min((e1 - s1) // 4, (e2 - s2) // 4, hi)
            start = e1 - length // 2
        else:
            length = min((e2 - s2) // 3, hi)
            start = s2
        if length >= lo:
            out.set(start, start + length, shape)
    return out


# --- long static stretches (staticSegments.cpp) --------------------------------------------


def _animate(rules_track: Track, rules: list[Rule], on: frozenset) -> Track:
    animation = animate_rough(rules_track, rules, on)
    if "timing" in on:
        animation = optimize_timing(animation)
    if "pauses" in on:
        animation = animate_pauses(animation)
    if "tweens" in on:
        animation = insert_tweens(animation)
    return animation


def _syllables(rules_track: Track, rules: list[Rule], start: int, end: int) -> int:
    if end <= start:
        return 0
    # every vowel's rule counts, so a diphthong's two parts count twice, as in Rhubarb
    middles = (rules[rid] for _, _, rid in _clip(rules_track.runs(), start, end))
    return sum(r.vowel and start <= (r.start + r.end) // 2 < end for r in middles)


def _statics(rules_track: Track, rules: list[Rule], animation: Track) -> list[tuple[int, int]]:
    spec = table()["static"]
    return [
        (s, e)
        for s, e, _ in animation.runs()
        if e - s >= spec["min_length"]
        and _syllables(rules_track, rules, s, e) >= spec["min_syllables"]
    ]


def _sum_squares(animation: Track) -> float:
    return sum(((e - s) / 100) ** 2 for s, e, _ in animation.runs())


def _fix_static(sub: Track, rules: list[Rule], on: frozenset) -> Track:
    """The sub-range's rules with up to three vowels given a nearby shape, whichever leaves no
    static stretch and the shortest shapes (Rhubarb's fixStaticSegmentRules)."""
    change = table()["static"]["change"]
    changeable = [(s, e, rid) for s, e, rid in sub.runs()
                  if rules[rid].vowel and len(rules[rid].shapes) == 1]  # fmt: skip

    def scenario(picked) -> tuple[Track, list, float]:
        new = sub.copy()
        for s, e, rid in picked:
            rule = rules[rid]
            rules.append(
                Rule(change.get(rule.shapes, rule.shapes), rule.phone, rule.start, rule.end)
            )
            new.set(s, e, len(rules) - 1)
        animation = _animate(new, rules, on)
        return new, _statics(new, rules, animation), _sum_squares(animation)

    best = scenario(())
    most = min(len(changeable), table()["static"]["max_changes"])
    for count in range(1, most + 1):
        if not best[1]:
            break
        for picked in itertools.combinations(changeable, count):
            new = scenario(picked)
            if (not new[1] and best[1]) or new[2] < best[2]:
                best = new
    return best[0]


def _flexible_bounds(rules_track: Track, rules: list[Rule], start: int, end: int) -> tuple:
    segs = rules_track.runs()
    first = next(i for i, (s, e, _) in enumerate(segs) if s <= start < e)
    last = next(i for i, (s, e, _) in enumerate(segs) if s <= end - 1 < e)
    while first > 0 and len(rules[segs[first][2]].shapes) > 1:
        first -= 1
    while last < len(segs) - 1 and len(rules[segs[last][2]].shapes) > 1:
        last += 1
    return segs[first][0], segs[last][1]


def avoid_static(rules_track: Track, rules: list[Rule], on: frozenset) -> Track:
    animation = _animate(rules_track, rules, on)
    statics = _statics(rules_track, rules, animation) if "static" in on else []
    if not statics:
        return animation
    fixed = rules_track.copy()
    for start, end in statics:
        lo, hi = _flexible_bounds(rules_track, rules, start, end)
        for s, e, rid in _fix_static(fixed.part(lo, hi), rules, on).runs():
            fixed.set(s, e, rid)
    return _animate(fixed, rules, on)


# --- the whole stage ---------------------------------------------------------------------


def rhubarb_cues(
    phonemes: list[Phoneme],
    duration: float,
    first_choice: dict[str, str],
    lead: float = 0.0,
    rules: frozenset = ALL_RULES,
    fps: float = 0.0,
    contacts: str = "AG",
) -> list[VisemeCue]:
    """Contiguous Rhubarb shape cues over 0..duration, as Rhubarb animates these phones.
    `first_choice` maps IPA to the set's single shape (used for phones Rhubarb lacks). Without
    the rules and with `fps`, every p/b/m and f/v shows on the frame nearest its middle, even
    when shorter than a frame (keys land on frames)."""
    n = max(1, round(duration * 100))
    phones = rhubarb_phones(phonemes, lead)
    owns = [first_choice.get(_ipa_of(name), "X") for name, _, _ in phones]
    rules_track, rule_list = shape_rules(phones, owns, n, frozenset(rules))
    animation = avoid_static(rules_track, rule_list, frozenset(rules))
    if fps and not rules:
        for (_, s, e), own in zip(phones, owns):
            frame = int(round((s + e) / 200 * fps) / fps * 100 + 1e-6)  # its centisecond
            if own in contacts and 0 <= frame < n and animation.at(frame) != own:
                animation.set(frame, frame + 2, own)
    return [VisemeCue(v, s / 100, min(e / 100, duration)) for s, e, v in animation.runs()]


@functools.cache
def _arpabet_ipa() -> dict[str, str]:
    out = {"Schwa": "ə"}
    for ipa, arpa in ipa_arpabet().items():
        out.setdefault(arpa, ipa)
    return out


def _ipa_of(name: str) -> str:
    return name[4:] if name.startswith("ipa:") else _arpabet_ipa().get(name, "")

// The 2D mouth: a timeline read at a time t (its curves, or its viseme cues) becomes a shape
// {open, wide, round, closed} (0..1 each), drawn as SVG lips. No dependencies.
"use strict";

const Mouth = (() => {
  const PARTS = ["open", "wide", "round", "closed"];
  const BLEND_S = 0.05; // viseme cues cross-fade over this many seconds

  // The last index i with times[i] <= t (-1 before the first).
  function indexAt(times, t) {
    let lo = 0, hi = times.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  // A curve's value at t: keys [[time, value], ...], linear or held ("constant").
  function curveAt(curve, t) {
    const keys = curve.keys;
    if (!keys.length) return 0;
    const i = indexAt(curve.times, t);
    if (i < 0) return keys[0][1];
    if (i >= keys.length - 1 || curve.interpolation === "constant") return keys[i][1];
    const [t0, v0] = keys[i], [t1, v1] = keys[i + 1];
    return t1 > t0 ? v0 + (v1 - v0) * (t - t0) / (t1 - t0) : v1;
  }

  function empty() { return { open: 0, wide: 0, round: 0, closed: 0 }; }

  function mix(into, shape, weight) {
    if (!shape) return;
    for (const p of PARTS) into[p] += weight * shape[p];
  }

  function clip(shape) {
    for (const p of PARTS) shape[p] = Math.min(1, Math.max(0, shape[p]));
    return shape;
  }

  // Prepare a /review/lines/{id}/timelines/{variant} answer for fast reads at any time.
  function prepare(answer) {
    const tl = answer.timeline;
    for (const c of tl.curves) c.times = c.keys.map((k) => k[0]);
    tl.cueStarts = tl.visemes.map((v) => v.start);
    return { variant: answer.variant, timeline: tl, source: answer.mouth.source, shapes: answer.mouth.shapes };
  }

  function fromCurves(data, t) {
    const shape = empty();
    let top = "", best = 0.05;
    for (const c of data.timeline.curves) {
      const w = curveAt(c, t);
      mix(shape, data.shapes[c.channel], w);
      if (w > best) { best = w; top = c.channel; }
    }
    return { shape: clip(shape), viseme: top };
  }

  function fromCues(data, t) {
    const cues = data.timeline.visemes, i = indexAt(data.timeline.cueStarts, t);
    const shape = empty();
    if (i < 0 || t > cues[i].end) return { shape, viseme: "" };
    const into = Math.min(1, (t - cues[i].start) / BLEND_S);
    mix(shape, data.shapes[cues[i].viseme], into);
    if (i > 0 && into < 1) mix(shape, data.shapes[cues[i - 1].viseme], 1 - into);
    return { shape: clip(shape), viseme: cues[i].viseme };
  }

  // {shape, viseme}: the mouth at t seconds, and the strongest viseme (channel) there.
  function at(data, t) {
    return data.source === "curves" ? fromCurves(data, t) : fromCues(data, t);
  }

  function lipPath(halfWidth, up, down, bulge) {
    const c = (halfWidth * bulge).toFixed(2), w = halfWidth.toFixed(2);
    const u = (-up * 1.33).toFixed(2), d = (down * 1.33).toFixed(2);
    return `M -${w} 0 C -${c} ${u} ${c} ${u} ${w} 0 C ${c} ${d} -${c} ${d} -${w} 0 Z`;
  }

  // Draw a shape into the page's mouth SVG (the <template id="panel"> markup).
  function draw(svg, result) {
    const s = result.shape;
    const halfWidth = 26 * (1 + 0.35 * s.wide - 0.35 * s.round);
    const gap = 20 * s.open * (1 - s.closed); // half the opening's height
    const lip = 5 + 3 * s.round;
    const bulge = 0.5 + 0.35 * s.round; // rounder lips: control points further out
    svg.querySelector(".lips").setAttribute("d", lipPath(halfWidth, gap + lip, gap + lip + 1, bulge));
    svg.querySelector(".inside").setAttribute("d", lipPath(halfWidth - 3, gap, gap, bulge));
    const teeth = svg.querySelector(".teeth");
    teeth.setAttribute("y", (-gap * 0.8).toFixed(2));
    teeth.setAttribute("height", Math.min(4, gap * 0.5).toFixed(2));
    teeth.setAttribute("width", (halfWidth * 0.9).toFixed(2));
    teeth.setAttribute("x", (-halfWidth * 0.45).toFixed(2));
    for (const p of PARTS) svg.dataset[p] = s[p].toFixed(3);
    svg.dataset.viseme = result.viseme;
  }

  return { prepare, at, draw, curveAt };
})();

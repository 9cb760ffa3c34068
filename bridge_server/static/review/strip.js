// The timeline strip: words, phonemes and visemes as boxes along the line, with a playhead.
"use strict";

const Strip = (() => {
  const ROWS = [
    ["words", (w) => w.text],
    ["phonemes", (p) => p.ipa],
    ["visemes", (v) => v.viseme],
  ];

  function row(name, items, label, duration, top) {
    const div = document.createElement("div");
    div.className = `row ${name}`;
    div.style.top = `${top}px`;
    for (const item of items) {
      const span = document.createElement("span");
      span.textContent = label(item);
      span.title = `${label(item)}  ${item.start.toFixed(3)}–${item.end.toFixed(3)} s`;
      span.style.left = `${(100 * item.start) / duration}%`;
      span.style.width = `${(100 * Math.max(0, item.end - item.start)) / duration}%`;
      div.appendChild(span);
    }
    return div;
  }

  // Fill `container` for `timeline`; a click seeks through onSeek(seconds). Returns {at(t)}.
  // Blind (A/B): no viseme row, whose names could tell the variants apart.
  function build(container, timeline, onSeek, blind = false) {
    const duration = Math.max(timeline.duration, 0.001);
    container.replaceChildren();
    container.style.height = `${(blind ? 2 : 3) * 22}px`;
    ROWS.slice(0, blind ? 2 : 3).forEach(([name, label], i) => {
      container.appendChild(row(name, timeline[name], label, duration, i * 22));
    });
    const head = document.createElement("div");
    head.className = "playhead";
    container.appendChild(head);
    container.onclick = (e) => {
      const box = container.getBoundingClientRect();
      onSeek(((e.clientX - box.left) / box.width) * duration);
    };
    return {
      at(t) { head.style.left = `${Math.min(100, (100 * t) / duration)}%`; },
    };
  }

  return { build };
})();

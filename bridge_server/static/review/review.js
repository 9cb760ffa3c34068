// The review page: pick a line, play it with its mouth(s), rate it or compare two timelines
// blind (A/B). Talks to /review/* only; lines are named by id.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  lines: [],
  line: null, // the line picked: {id, variants, ...}
  loaded: {}, // variant -> Mouth.prepare(...) of the picked line
  mode: "single",
  variant: null, // single mode: the variant shown
  ab: null, // A/B mode: {left, right}, in a random order
  panels: [], // [{data, svg, strip}]
  scores: {},
  session: (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)),
};
window.review = state; // for tests and the curious: the page's state

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function say(message, error = false) {
  $("status").textContent = message;
  $("status").className = error ? "error" : "";
}

async function loadLines() {
  const found = await api("/review/lines");
  state.lines = found.lines;
  $("lines").replaceChildren(...found.lines.map(lineButton));
  $("skipped").textContent = found.skipped.length ? `Left out: ${found.skipped.join("; ")}` : "";
}

function lineButton(line) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.textContent = line.text ? `${line.id}: ${line.text}` : line.id;
  button.dataset.line = line.id;
  button.onclick = () => pickLine(line).catch((e) => say(e.message, true));
  li.appendChild(button);
  return li;
}

async function pickLine(line) {
  const answers = await Promise.all(line.variants.map((v) =>
    api(`/review/lines/${encodeURIComponent(line.id)}/timelines/${encodeURIComponent(v)}`)));
  state.line = line;
  state.loaded = {};
  for (const a of answers) state.loaded[a.variant] = Mouth.prepare(a);
  for (const b of document.querySelectorAll("#lines button")) {
    b.setAttribute("aria-current", String(b.dataset.line === line.id));
  }
  $("audio").src = `/review/lines/${encodeURIComponent(line.id)}/audio`;
  $("line-title").textContent = line.id;
  $("line-text").textContent = line.text;
  $("variant").replaceChildren(...line.variants.map((v) => new Option(v, v)));
  state.variant = line.variants[0];
  state.ab = null;
  $("stage").hidden = false;
  render();
}

function shuffledPair(variants) {
  const pool = [...variants];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return { left: pool[0], right: pool[1] };
}

function render() {
  const single = state.mode === "single";
  $("rate-form").hidden = !single;
  $("ab-form").hidden = single;
  $("variant-pick").hidden = !single;
  if (!state.line) return;
  let shown;
  if (single) {
    shown = [[state.variant, `Timeline: ${state.variant}`]];
  } else if (state.line.variants.length < 2) {
    shown = [];
    say("A/B needs a line with two timelines or more (take.json and take.<variant>.json).", true);
  } else {
    state.ab = state.ab || shuffledPair(state.line.variants);
    shown = [[state.ab.left, "A"], [state.ab.right, "B"]];
  }
  $("ab-form").querySelector("button[type=submit]").disabled = !single && !shown.length;
  state.panels = shown.map(([variant, caption]) => panel(state.loaded[variant], caption));
  $("panels").replaceChildren(...state.panels.map((p) => p.element));
  draw();
}

function panel(data, caption) {
  const element = $("panel").content.firstElementChild.cloneNode(true);
  element.querySelector("figcaption").textContent = caption;
  const strip = Strip.build(element.querySelector(".strip"), data.timeline, (t) => {
    $("audio").currentTime = t;
  }, state.mode === "ab");
  return { data, element, svg: element.querySelector("svg"), strip };
}

function draw() {
  const t = $("audio").currentTime || 0;
  for (const p of state.panels) {
    Mouth.draw(p.svg, Mouth.at(p.data, t));
    p.svg.dataset.time = t.toFixed(4); // the audio time this mouth shows
    p.strip.at(t);
  }
  $("clock").textContent = `${t.toFixed(2)} s`;
}

function loop() {
  draw();
  requestAnimationFrame(loop);
}

function setMode(mode) {
  state.mode = mode;
  $("mode-single").setAttribute("aria-pressed", String(mode === "single"));
  $("mode-ab").setAttribute("aria-pressed", String(mode === "ab"));
  say("");
  render();
}

function scales() {
  for (const scale of document.querySelectorAll(".scale")) {
    for (let n = 1; n <= 5; n++) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = n;
      b.dataset.score = n;
      b.setAttribute("aria-pressed", "false");
      b.onclick = () => {
        state.scores[scale.dataset.name] = n;
        for (const other of scale.children) other.setAttribute("aria-pressed", String(other === b));
      };
      scale.appendChild(b);
    }
  }
}

function who(form) {
  const rater = $("rater").value.trim();
  if (!rater) throw new Error("Type your name or rater id first (top of the page).");
  localStorage.setItem("lipsync-review-rater", rater);
  return { line: state.line.id, rater, session: state.session, comment: form.comment.value };
}

async function post(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function saveRating(form) {
  const { sync, naturalness } = state.scores;
  if (!sync || !naturalness) throw new Error("Pick a score 1–5 for sync and for naturalness.");
  const saved = await post("/review/ratings", { ...who(form), variant: state.variant, sync, naturalness });
  form.reset();
  state.scores = {};
  for (const b of form.querySelectorAll(".scale button")) b.setAttribute("aria-pressed", "false");
  say(`Saved rating #${saved.id}.`);
}

async function saveChoice(form) {
  const preferred = form.preferred.value;
  if (!preferred) throw new Error("Choose A, B or no difference.");
  const saved = await post("/review/comparisons", { ...who(form), ...state.ab, preferred });
  form.reset();
  say(`Saved choice #${saved.id}.`);
}

function submitting(form, save) {
  form.onsubmit = (e) => {
    e.preventDefault();
    save(form).catch((err) => say(err.message, true));
  };
}

function start() {
  $("rater").value = localStorage.getItem("lipsync-review-rater") || "";
  scales();
  submitting($("rate-form"), saveRating);
  submitting($("ab-form"), saveChoice);
  $("mode-single").onclick = () => setMode("single");
  $("mode-ab").onclick = () => setMode("ab");
  $("ab-shuffle").onclick = () => { state.ab = null; render(); };
  $("variant").onchange = (e) => { state.variant = e.target.value; render(); };
  loadLines().catch((e) => say(e.message, true));
  requestAnimationFrame(loop);
}

start();

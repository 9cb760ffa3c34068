// Drives the review page (lipsync review) in a real headless Chromium through Playwright
// (npm playwright-core) and prints what it saw as one JSON object; tests/test_review.py checks it.
//
//   node tests/review_browser.js DIR_WITH_NODE_MODULES BASE_URL RATE_LINE AB_LINE SEEK_LINE [CHROMIUM]

const path = require("path");
const { chromium } = require(path.join(process.argv[2], "node_modules", "playwright-core"));
const [base, rateLine, abLine, seekLine] = process.argv.slice(3, 7);
const executablePath = process.argv[7] || "/usr/bin/chromium";
const SEEK_TIMES = [0.3, 0.6, 0.9, 1.2, 1.5];

const started = Date.now();
const timings = {};
const mark = (name) => { timings[name] = (Date.now() - started) / 1000; };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The page's audio clock and first mouth, read every 50 ms while it plays.
async function samplePlayback(page, seconds) {
  const samples = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    samples.push(await page.evaluate(() => {
      const audio = document.getElementById("audio");
      const svg = document.querySelector("#panels svg.mouth");
      return {
        t: audio.currentTime, paused: audio.paused, clock: document.getElementById("clock").textContent,
        drawn: Number(svg.dataset.time), inside: svg.querySelector(".inside").getAttribute("d"),
        open: svg.dataset.open,
        viseme: svg.dataset.viseme, playhead: svg.parentElement.querySelector(".playhead").style.left,
      };
    }));
    await sleep(50);
  }
  return samples;
}

async function pick(page, line) {
  await page.click(`#lines button[data-line="${line}"]`);
  await page.waitForFunction((id) => window.review.line && window.review.line.id === id
    && document.getElementById("audio").src.endsWith(`/lines/${id}/audio`), line);
}

async function status(page, text) {
  await page.waitForFunction((t) => document.getElementById("status").textContent.includes(t), text);
  return page.textContent("#status");
}

async function rate(page, out) {
  await page.click("#rate-form button[type=submit]"); // no scores yet: refused on the page
  out.refusedWithoutScores = await status(page, "Pick a score");
  await page.click('.scale[data-name="sync"] button[data-score="4"]');
  await page.click('.scale[data-name="naturalness"] button[data-score="5"]');
  await page.fill("#rate-form textarea", "lips close late on 'box'");
  out.ratedVariant = await page.evaluate(() => window.review.variant);
  await page.click("#rate-form button[type=submit]");
  out.rated = await status(page, "Saved rating #");
}

async function compare(page, out) {
  await page.click("#mode-ab");
  await page.waitForFunction(() => window.review.panels.length === 2);
  out.ab = await page.evaluate(() => ({ ...window.review.ab }));
  out.abCaptions = await page.$$eval("#panels figcaption", (els) => els.map((e) => e.textContent));
  out.abMouths = await page.$$eval("#panels svg.mouth", (els) => els.length);
  await page.check('#ab-form input[value="left"]');
  await page.fill("#ab-form textarea", "A is crisper");
  await page.click("#ab-form button[type=submit]");
  out.compared = await status(page, "Saved choice #");
  out.orders = [];
  for (let i = 0; i < 20; i++) { // "Another pair": a fresh random order each time
    await page.click("#ab-shuffle");
    out.orders.push(await page.evaluate(() => `${window.review.ab.left}|${window.review.ab.right}`));
  }
}

// Paused, seek to fixed times: the mouth there, after two animation frames.
async function seek(page, out) {
  await page.click("#mode-single");
  await pick(page, seekLine);
  await page.waitForFunction(() => document.getElementById("audio").readyState >= 2);
  out.seeks = [];
  for (const t of SEEK_TIMES) {
    out.seeks.push(await page.evaluate(async (at) => {
      const audio = document.getElementById("audio");
      audio.currentTime = at;
      await new Promise((r) => audio.addEventListener("seeked", r, { once: true }));
      for (let i = 0; i < 2; i++) await new Promise((r) => requestAnimationFrame(r));
      const svg = document.querySelector("#panels svg.mouth");
      return { t: audio.currentTime, viseme: svg.dataset.viseme, open: Number(svg.dataset.open) };
    }, t));
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
  });
  mark("launched");
  const out = { errors: [], timings };
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => out.errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
    await page.goto(`${base}/review/`);
    await page.waitForSelector("#lines button");
    out.lines = await page.$$eval("#lines button", (els) => els.map((e) => e.dataset.line));
    await page.fill("#rater", "tester-1");
    mark("loaded");

    await pick(page, rateLine);
    out.before = await samplePlayback(page, 0.1);
    await page.evaluate(() => document.getElementById("audio").play());
    mark("playing");
    out.samples = await samplePlayback(page, 1.5);
    await page.evaluate(() => document.getElementById("audio").pause());
    mark("played");

    await rate(page, out);
    mark("rated");
    await pick(page, abLine);
    await compare(page, out);
    mark("compared");
    await seek(page, out);
    mark("seeked");
    out.session = await page.evaluate(() => window.review.session);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});

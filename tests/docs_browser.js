// Opens the bridge's /docs (Swagger UI) and /redoc in headless Chromium through Playwright
// (npm playwright-core) with every request to another host blocked, and prints one JSON object
// of what rendered; tests/test_server.py checks it.
//
//   node tests/docs_browser.js DIR_WITH_NODE_MODULES BASE_URL [CHROMIUM]

const path = require("path");
const { chromium } = require(path.join(process.argv[2], "node_modules", "playwright-core"));
const base = process.argv[3];
const executablePath = process.argv[4] || "/usr/bin/chromium";

(async () => {
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  const page = await browser.newPage();
  const elsewhere = [];
  const errors = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base) || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
    elsewhere.push(url);
    return route.abort();
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/docs");
  await page.waitForSelector(".opblock-summary-path", { timeout: 30000 });
  const operations = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.textContent.trim()));
  await page.goto(base + "/redoc");
  await page.waitForSelector("[data-section-id^='tag/'], [data-section-id^='operation/']", { timeout: 30000 });
  const redoc = await page.$$eval("[data-section-id^='operation/']", (els) => els.length);
  await browser.close();
  console.log(JSON.stringify({ operations, redoc, elsewhere, errors }));
})().catch((e) => { console.error(e); process.exit(1); });

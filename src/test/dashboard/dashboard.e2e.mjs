// End-to-end test of GET /dashboard in headless Chromium, driven by DashboardIT (which starts,
// restarts and stops the service). Settings come from the environment:
//   DASHBOARD_URL        the service, e.g. http://127.0.0.1:4710
//   DASHBOARD_SHOTS      the folder for the screenshots (target/)
//   TOKENS_E2E_NODE_MODULES  the node_modules folder that holds playwright-core
//   CHROMIUM             the browser (default /usr/bin/chromium)
// When it needs the service restarted it prints "@@restart" (or "@@restart auth") and waits for
// a line "restarted" (or "restarted <read token> <write token>") on its standard input.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.DASHBOARD_URL;
const shots = process.env.DASHBOARD_SHOTS || "target";
const require = createRequire(join(process.env.TOKENS_E2E_NODE_MODULES, "noop.js"));
const { chromium } = require("playwright-core");

const lines = createInterface({ input: process.stdin });
const pending = [];
const waiters = [];
lines.on("line", (line) => (waiters.length ? waiters.shift()(line) : pending.push(line)));
const nextLine = () => (pending.length ? Promise.resolve(pending.shift()) : new Promise((resolve) => waiters.push(resolve)));

let bearer = null;
async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (bearer) {
    headers.Authorization = `Bearer ${bearer}`;
  }
  const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await response.json();
  if (!response.ok) {
    throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(json)}`);
  }
  return json;
}

const user = (n) => `${String(n).repeat(8)}-0000-4000-8000-${String(n).repeat(12)}`.slice(0, 36);
const short = (id) => id.slice(0, 8);

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

const profile = mkdtempSync(join(tmpdir(), "dashboard-chromium-"));
// (Playwright passes the empty profile folder to Chromium as its --user-data-dir.)
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic"],
});
let phase = "load";
const problems = [];
const eventRequests = [];
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") {
      problems.push({ phase, text: message.text() });
    }
  });
  page.on("pageerror", (error) => problems.push({ phase, text: `uncaught: ${error.message}`, uncaught: true }));
  page.on("request", (request) => {
    if (request.url().endsWith("/api/events")) {
      eventRequests.push({ phase, lastEventId: request.headers()["last-event-id"] || null });
    }
  });
  const step = async (name, started) => {
    await page.screenshot({ path: join(shots, `dashboard-${name}.png`), fullPage: true });
    console.log(`step ${name}: ok${started ? ` in ${Date.now() - started} ms` : ""}`);
  };
  const cell = (pool, token) => page.locator(`.pool[data-pool="${pool}"] .cell[data-token="${token}"]`);
  /** Waits until the token's cell is held by `userId`, at most `timeout` ms. */
  const heldBy = (pool, token, userId, timeout) => page.waitForFunction(([p, t, u]) => {
    const element = document.querySelector(`.pool[data-pool="${p}"] .cell[data-token="${t}"]`);
    return element && element.dataset.user === u && element.dataset.state !== "free";
  }, [pool, token, userId], { timeout });
  const feedHas = (type, text, timeout) => page.waitForFunction(([k, s]) =>
    [...document.querySelectorAll(`#feed li[data-type="${k}"]`)].some((li) => li.textContent.includes(s)), [type, text], { timeout });

  // 1. The page loads, shows the pools and every token, with no console error.
  await call("POST", "/api/pools", { name: "pair", size: 2, lease_ttl: "PT1M" });
  await page.goto(`${base}/dashboard`);
  await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
  const defaultSize = (await call("GET", "/api/pools/default")).size;
  await page.waitForFunction((size) => document.querySelectorAll('.pool[data-pool="default"] .cell').length === size
    && document.querySelectorAll('.pool[data-pool="pair"] .cell').length === 2, defaultSize, { timeout: 5000 });
  check(problems.length === 0, `console errors on load: ${JSON.stringify(problems)}`);
  await step("1-loaded");

  // 2. An activation made over HTTP appears in the grid and the feed within a second.
  phase = "live";
  let started = Date.now();
  const first = await call("POST", "/api/tokens/activate", { user_id: user(1) });
  await heldBy("default", first.token_id, user(1), 1000);
  await feedHas("granted", short(user(1)), 1000);
  const title = await cell("default", first.token_id).getAttribute("title");
  check(title.includes(short(user(1))) && / left$/.test(title), `the cell's title names the holder and time left: ${title}`);
  await cell("default", first.token_id).hover();
  const detail = await page.locator('.pool[data-pool="default"] .detail').textContent();
  check(detail.includes(user(1)) && detail.includes("left"), `hovering shows the holder: ${detail}`);
  await step("2-activated", started);

  // 3. On the pool of two, a third activation evicts the oldest holder; the feed names them.
  await call("POST", "/api/pools/pair/tokens/activate", { user_id: user(2) });
  await call("POST", "/api/pools/pair/tokens/activate", { user_id: user(3) });
  started = Date.now();
  const third = await call("POST", "/api/pools/pair/tokens/activate", { user_id: user(4) });
  check(third.evicted && third.evicted.user_id === user(2), `the activation evicted ${user(2)}: ${JSON.stringify(third)}`);
  await feedHas("evicted", short(user(2)), 1000);
  await heldBy("pair", third.token_id, user(4), 1000);
  await page.waitForSelector(`.pool[data-pool="pair"] .cell.evicted`, { timeout: 1000 });
  const newest = await page.locator("#feed li").first().getAttribute("data-type");
  check(newest === "granted", `the feed shows the newest change first (the grant after the eviction), got ${newest}`);
  await step("3-evicted", started);

  // 4. The service restarts: the page reconnects by itself, resuming from Last-Event-ID, and is live again.
  phase = "restart";
  console.log("@@restart");
  check((await nextLine()) === "restarted", "the driver restarted the service");
  await page.waitForSelector('#status[data-status="live"]', { timeout: 15_000 });
  phase = "after-restart";
  started = Date.now();
  const again = await call("POST", "/api/tokens/activate", { user_id: user(5) });
  await heldBy("default", again.token_id, user(5), 1000);
  await feedHas("granted", short(user(5)), 1000);
  const resumed = eventRequests.filter((request) => request.phase !== "load");
  check(resumed.length > 0 && resumed.every((request) => request.lastEventId !== null),
    `every reconnect sent Last-Event-ID: ${JSON.stringify(eventRequests)}`);
  check(await page.locator(`.pool[data-pool="default"] .cell[data-user="${user(1)}"]`).count() === 1,
    "the lease made before the restart is still shown");
  await step("4-restarted", started);

  // 5. On a phone: one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `the page is ${overflow} px wider than a phone's screen`);
  await step("5-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  // 6. Authentication on: the page asks for a token, keeps it in memory only, and sends it with every call.
  phase = "auth";
  console.log("@@restart auth");
  const [answer, readToken, writeToken] = (await nextLine()).split(" ");
  check(answer === "restarted" && readToken && writeToken, "the driver restarted the service with authentication on");
  await page.waitForSelector("#sign-in:not([hidden])", { timeout: 15_000 });
  await step("6-sign-in");
  await page.fill("#bearer", readToken);
  await page.click('#sign-in button[type="submit"]');
  await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
  phase = "auth-live";
  bearer = writeToken;
  started = Date.now();
  const signedIn = await call("POST", "/api/tokens/activate", { user_id: user(6) });
  await heldBy("default", signedIn.token_id, user(6), 1000);
  const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
  check(JSON.stringify(stored) === JSON.stringify([0, 0, ""]), `nothing is stored in the browser: ${JSON.stringify(stored)}`);
  await step("7-signed-in", started);

  // Console errors: none, but for the failed connections while the service was down and the
  // 401s that told the page to ask for a token. No uncaught error at any time.
  const expected = (problem) => !problem.uncaught && (
    (problem.phase === "restart" && /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_RESET/.test(problem.text))
    || (problem.phase === "auth" && /status of 401|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_RESET/.test(problem.text)));
  const unexpected = problems.filter((problem) => !expected(problem));
  check(unexpected.length === 0, `console errors: ${JSON.stringify(unexpected)}`);
  console.log(`dashboard e2e: every step ok (${problems.length} expected console messages while the service was away)`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
  lines.close();
}

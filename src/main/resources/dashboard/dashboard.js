// The dashboard page: reads the pools and their tokens, follows GET /api/events, and keeps the
// grid, the feed and the charts up to date. The logic it relies on is in model.js.
import {
  EventStreamParser, Feed, HoldTimes, History, RateCounter, ENDING_TYPES,
  applyChange, cellState, poolCounts, poolFromApi, reconnectDelay, shortId, timeLeft, tokenFromApi,
} from "./model.js";
import { drawChart } from "./charts.js";

/** Pools and cells shown at most: the page stays quick on a phone whatever the service holds. */
const MAX_POOLS = 24;
const MAX_CELLS = 1000;
const CHART_SPAN = 5 * 60_000;
const COLORS = ["#2f6fdf", "#e5a00d", "#12b76a", "#d92d20", "#7a5af8", "#0ba5ec"];

const state = {
  bearer: null,
  pools: new Map(),
  lastEventId: null,
  feed: new Feed(),
  activations: new RateCounter(CHART_SPAN / 1000),
  holds: new HoldTimes(CHART_SPAN),
  holdHistory: { p50: new History(), p90: new History(), p99: new History() },
  use: new Map(),
  backlog: new History(),
  lag: new History(),
  timedOut: new Map(),
  reloading: null,
  renderQueued: false,
};

const $ = (id) => document.getElementById(id);

class NeedsToken extends Error {
  constructor(status) {
    super(status === 403 ? "This token lacks the scope tokens:read." : "A bearer token is needed.");
    this.status = status;
  }
}

function headers(extra = {}) {
  return state.bearer ? { ...extra, Authorization: `Bearer ${state.bearer}` } : extra;
}

async function api(path) {
  const response = await fetch(path, { headers: headers({ Accept: "application/json" }), cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    throw new NeedsToken(response.status);
  }
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.message || `${path} answered ${response.status}`);
  }
  return body;
}

function setStatus(status, text) {
  const element = $("status");
  element.dataset.status = status;
  element.textContent = text;
  // What is shown may be out of date while the stream is away: the stylesheet dims it.
  document.body.dataset.status = status;
}

// ---- reading the state

async function loadPools() {
  const page = await api(`/api/pools?limit=${MAX_POOLS}`);
  const pools = new Map();
  await Promise.all(page.pools.map(async (info) => {
    const pool = poolFromApi(info);
    const list = await api(`/api/pools/${encodeURIComponent(info.name)}/tokens?state=all`);
    for (const item of list.tokens) {
      pool.tokens.set(item.token_id, tokenFromApi(item, pool.ttlMillis));
    }
    pools.set(pool.name, pool);
  }));
  state.pools = new Map([...pools.entries()].sort(([a], [b]) => (a === "default" ? -1 : b === "default" ? 1 : a.localeCompare(b))));
  state.morePools = page.total > page.pools.length ? page.total : 0;
  buildPools();
}

/** Reads everything again, once at a time; callers that ask meanwhile share the same read. */
function reload() {
  if (!state.reloading) {
    state.reloading = loadPools().finally(() => { state.reloading = null; });
  }
  return state.reloading;
}

/** Every few seconds: waiting counts, sizes and new pools; the waits that timed out (not an event of the stream). */
async function poll() {
  if (!following) {
    return;
  }
  try {
    const page = await api(`/api/pools?limit=${MAX_POOLS}`);
    let changed = page.pools.length !== state.pools.size;
    for (const info of page.pools) {
      const pool = state.pools.get(info.name);
      if (!pool || pool.size !== info.size) {
        changed = true;
      } else {
        pool.waiting = info.waiting || 0;
        pool.overflow = info.overflow;
      }
      if (info.overflow === "wait") {
        const stats = await api(`/api/pools/${encodeURIComponent(info.name)}/stats`);
        const before = state.timedOut.get(info.name);
        const now = stats.counters.timed_out;
        if (before !== undefined && now > before) {
          state.feed.add({ key: null, at: Date.now(), type: "timed_out", pool: info.name,
            text: `${now - before} waiting ${now - before === 1 ? "activation" : "activations"} timed out` });
        }
        state.timedOut.set(info.name, now);
      }
    }
    if (changed) {
      await reload();
    }
    queueRender();
  } catch (error) {
    handleFailure(error);
  }
}

async function pollHealth() {
  try {
    // Open whatever the authentication: it carries the write backlog and the age of the oldest unwritten change.
    const response = await fetch("/api/health", { cache: "no-store" });
    const body = await response.json();
    if (body.write_backlog !== undefined) {
      const now = Date.now();
      state.backlog.add(now, body.write_backlog);
      state.lag.add(now, body.write_lag_ms);
    }
  } catch {
    // The service is away (restarting): the stream's status says so.
  }
}

// ---- following the changes

async function follow() {
  let attempt = 0;
  let fresh = true;
  for (;;) {
    try {
      const response = await fetch("/api/events", {
        headers: headers({ Accept: "text/event-stream", ...(state.lastEventId ? { "Last-Event-ID": state.lastEventId } : {}) }),
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        throw new NeedsToken(response.status);
      }
      if (!response.ok) {
        throw new Error(`the event stream answered ${response.status}`);
      }
      if (fresh) {
        // Read after the stream has opened, so no change falls between the two.
        await reload();
        fresh = false;
      }
      attempt = 0;
      setStatus("live", "live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new EventStreamParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        for (const event of parser.push(value)) {
          await onEvent(event);
        }
        if (parser.lastEventId) {
          state.lastEventId = parser.lastEventId;
          $("last-event").textContent = `last change id ${state.lastEventId}`;
        }
      }
    } catch (error) {
      if (error instanceof NeedsToken) {
        askForToken(error);
        return;
      }
    }
    setStatus("reconnecting", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, reconnectDelay(attempt++)));
  }
}

async function onEvent(event) {
  if (event.type === "reset") {
    // Changes were missed (the service restarted, or the client fell behind): read the state again.
    await reload();
    queueRender();
    return;
  }
  let change;
  try {
    change = JSON.parse(event.data);
  } catch {
    return;
  }
  const now = Date.now();
  // A pool not shown yet is new (unless the page already shows as many as it may), a token not known one the pool grew by.
  if (applyChange(state.pools, change) === "unknown" && (state.pools.has(change.pool) || !state.morePools)) {
    reload().then(queueRender, handleFailure);
  }
  state.feed.addChange(change, now);
  if (change.type === "granted") {
    state.activations.add(now);
  }
  if (ENDING_TYPES.includes(change.type)) {
    state.holds.addChange(change, now);
  }
  if (change.type === "evicted") {
    flash(change.pool, change.token_id);
  }
  queueRender();
}

function handleFailure(error) {
  if (error instanceof NeedsToken) {
    askForToken(error);
  }
}

// ---- signing in (the token stays in this variable: no cookie, no storage)

let following = false;

function askForToken(error) {
  following = false;
  setStatus("sign-in", "needs a token");
  const form = $("sign-in");
  form.hidden = false;
  const message = $("sign-in-error");
  message.hidden = !state.bearer;
  message.textContent = error.message;
  $("bearer").focus();
}

function start() {
  if (!following) {
    following = true;
    follow();
  }
}

// ---- drawing

function buildPools() {
  const container = $("pools");
  const cards = [];
  for (const pool of state.pools.values()) {
    const card = document.createElement("article");
    card.className = "pool panel";
    card.dataset.pool = pool.name;
    const head = document.createElement("div");
    head.className = "pool-head";
    const name = document.createElement("span");
    name.className = "pool-name";
    name.textContent = pool.name;
    const summary = document.createElement("span");
    summary.className = "pool-summary muted";
    head.append(name, summary);
    const grid = document.createElement("div");
    grid.className = "grid";
    const detail = document.createElement("div");
    detail.className = "detail";
    detail.textContent = "Point at a cell to see its holder and time left.";
    pool.cells = new Map();
    for (const token of [...pool.tokens.values()].slice(0, MAX_CELLS)) {
      const cell = document.createElement("button");
      cell.type = "button";
      cell.className = "cell free";
      cell.dataset.token = token.id;
      const show = () => {
        pool.shown = token.id;
        detail.textContent = describeCell(pool, token.id);
      };
      cell.addEventListener("mouseenter", show);
      cell.addEventListener("focus", show);
      cell.addEventListener("click", show);
      pool.cells.set(token.id, cell);
      grid.append(cell);
    }
    card.append(head, grid, detail);
    if (pool.tokens.size > MAX_CELLS) {
      const more = document.createElement("p");
      more.className = "muted";
      more.textContent = `Showing ${MAX_CELLS} of ${pool.tokens.size} tokens.`;
      card.append(more);
    }
    pool.summary = summary;
    pool.detail = detail;
    cards.push(card);
  }
  if (state.morePools) {
    const more = document.createElement("p");
    more.className = "muted";
    more.textContent = `Showing ${state.pools.size} of ${state.morePools} pools.`;
    cards.push(more);
  }
  container.replaceChildren(...cards);
  queueRender();
}

function describeCell(pool, tokenId) {
  const token = pool.tokens.get(tokenId);
  if (!token) {
    return "";
  }
  if (token.state !== "active") {
    return `Token ${tokenId}: free`;
  }
  const left = token.expiresAt === null ? "unknown" : timeLeft(token.expiresAt - Date.now());
  return `Token ${tokenId}: held by ${token.user}, ${left} left`;
}

const flashing = new Map();

function flash(poolName, tokenId) {
  const cell = state.pools.get(poolName)?.cells?.get(tokenId);
  if (!cell) {
    return;
  }
  cell.classList.add("evicted");
  clearTimeout(flashing.get(cell));
  flashing.set(cell, setTimeout(() => cell.classList.remove("evicted"), 3000));
}

function queueRender() {
  if (!state.renderQueued) {
    state.renderQueued = true;
    requestAnimationFrame(() => {
      state.renderQueued = false;
      render();
    });
  }
}

function render() {
  const now = Date.now();
  for (const pool of state.pools.values()) {
    for (const [id, cell] of pool.cells || []) {
      const token = pool.tokens.get(id);
      const cellClass = cellState(token, now, pool.ttlMillis);
      if (cell.dataset.state !== cellClass) {
        cell.dataset.state = cellClass;
        cell.classList.remove("free", "held", "expiring");
        cell.classList.add(cellClass);
      }
      cell.dataset.user = token.user || "";
      cell.title = token.state === "active"
        ? `${shortId(id)} held by ${shortId(token.user)}, ${token.expiresAt === null ? "unknown" : timeLeft(token.expiresAt - now)} left`
        : `${shortId(id)} free`;
    }
    if (pool.shown) {
      pool.detail.textContent = describeCell(pool, pool.shown);
    }
    if (pool.summary) {
      const counts = poolCounts(pool, now);
      pool.summary.textContent = `${counts.held + counts.expiring} of ${pool.size} held`
        + ` · ${counts.expiring} about to expire · ${pool.waiting} waiting · ${pool.overflow}`;
    }
  }
  renderFeed();
}

function renderFeed() {
  const items = state.feed.entries.map((entry) => {
    const item = document.createElement("li");
    item.dataset.type = entry.type;
    const time = document.createElement("time");
    const at = new Date(entry.at);
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour12: false });
    const what = document.createElement("span");
    what.className = "what";
    const badge = document.createElement("span");
    badge.className = `badge ${entry.type}`;
    badge.textContent = entry.type.replace("_", " ");
    const pool = document.createElement("span");
    pool.className = "pool-tag";
    pool.textContent = ` · ${entry.pool}`;
    what.append(badge, entry.text, pool);
    item.append(time, what);
    return item;
  });
  $("feed").replaceChildren(...items);
  $("feed-empty").hidden = items.length > 0;
}

function sample() {
  const now = Date.now();
  const holds = state.holds.percentiles(now);
  for (const key of ["p50", "p90", "p99"]) {
    state.holdHistory[key].add(now, holds[key] === null ? null : holds[key] / 1000);
  }
  for (const pool of state.pools.values()) {
    if (!state.use.has(pool.name)) {
      state.use.set(pool.name, new History());
    }
    const counts = poolCounts(pool, now);
    state.use.get(pool.name).add(now, pool.size ? (100 * (counts.held + counts.expiring)) / pool.size : 0);
  }
  for (const name of state.use.keys()) {
    if (!state.pools.has(name)) {
      state.use.delete(name);
    }
  }
  drawCharts(now);
  render();
}

function drawCharts(now) {
  const span = { now, spanMillis: CHART_SPAN };
  drawChart($("chart-rate"), $("legend-rate"), [
    { label: "granted/s", color: COLORS[0], points: state.activations.series(now) },
  ], { ...span, format: (v) => String(Math.round(v * 10) / 10) });
  drawChart($("chart-hold"), $("legend-hold"), ["p50", "p90", "p99"].map((key, i) => (
    { label: key, color: COLORS[i], points: state.holdHistory[key].points })), { ...span, format: seconds });
  drawChart($("chart-use"), $("legend-use"), [...state.use.entries()].slice(0, COLORS.length).map(([name, history], i) => (
    { label: name, color: COLORS[i], points: history.points })), { ...span, format: (v) => `${Math.round(v)}%`, minimumTop: 100 });
  drawChart($("chart-backlog"), $("legend-backlog"), [
    { label: "backlog (changes)", color: COLORS[0], points: state.backlog.points },
    { label: "oldest unwritten (ms)", color: COLORS[1], points: state.lag.points },
  ], { ...span, format: (v) => String(Math.round(v * 10) / 10), minimumTop: 10 });
}

function seconds(value) {
  if (value === null) {
    return "—";
  }
  return value >= 60 ? timeLeft(value * 1000) : `${Math.round(value * 10) / 10}s`;
}

// ---- start

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("bearer").value.trim();
  if (!value) {
    return;
  }
  state.bearer = value;
  $("bearer").value = "";
  $("sign-in").hidden = true;
  setStatus("connecting", "connecting…");
  start();
});

start();
setInterval(poll, 5000);
setInterval(pollHealth, 2000);
setInterval(sample, 2000);
pollHealth().then(sample);

// The dashboard's logic without the page: parsing the event stream, keeping the pools' tokens,
// deciding a cell's state, the feed, and the figures behind the charts. No DOM here, so that
// `node --test` can check it (src/test/dashboard/model.test.js).

/** Event types that end a lease: the token is free again. */
export const ENDING_TYPES = ["released", "expired", "evicted", "revoked", "cleared"];

/** How many changes the feed keeps. */
export const FEED_SIZE = 50;

/** "550e8400-e29b-…" → "550e8400": enough to tell users apart on a screen; null → "—". */
export function shortId(id) {
  if (id === null || id === undefined || id === "") {
    return "—";
  }
  const text = String(id);
  return text.length > 8 ? text.slice(0, 8) : text;
}

/** An ISO-8601 duration (PT2M, PT0.5S, P1DT2H) in milliseconds, or NaN if it is not one. */
export function parseDuration(text) {
  const match = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/
    .exec(String(text || ""));
  if (!match || text === "P" || text.endsWith("T")) {
    return NaN;
  }
  const [, days, hours, minutes, seconds] = match.map((part) => (part === undefined ? 0 : Number(part)));
  return Math.round(((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000);
}

/** A timestamp of the API (2025-12-19T15:12:02Z) in epoch milliseconds, or null. */
export function parseTime(text) {
  if (!text) {
    return null;
  }
  const millis = Date.parse(text);
  return Number.isNaN(millis) ? null : millis;
}

/**
 * How long before its end a held token counts as about to expire: a quarter of the lease TTL,
 * at least 5 s and at most 30 s, so short and long TTLs both get a warning that can be seen.
 */
export function expiringThreshold(ttlMillis) {
  if (!Number.isFinite(ttlMillis) || ttlMillis <= 0) {
    return 30_000;
  }
  return Math.min(30_000, Math.max(5_000, ttlMillis / 4));
}

/** "free", "held" or "expiring" for a token of the model at `now`. */
export function cellState(token, now, ttlMillis) {
  if (!token || token.state !== "active") {
    return "free";
  }
  if (token.expiresAt === null || token.expiresAt === undefined) {
    return "held";
  }
  return token.expiresAt - now <= expiringThreshold(ttlMillis) ? "expiring" : "held";
}

/** Time left as a person reads it: "1h 02m", "2m 05s", "12s", "ending". */
export function timeLeft(millis) {
  if (millis === null || millis === undefined || Number.isNaN(millis)) {
    return "unknown";
  }
  if (millis <= 0) {
    return "ending";
  }
  const seconds = Math.ceil(millis / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  if (seconds >= 3600) {
    return `${Math.floor(seconds / 3600)}h ${pad(Math.floor((seconds % 3600) / 60))}m`;
  }
  if (seconds >= 60) {
    return `${Math.floor(seconds / 60)}m ${pad(seconds % 60)}s`;
  }
  return `${seconds}s`;
}

/** The nearest-rank percentile `p` (0 < p <= 100) of `values`, or null for none. */
export function percentile(values, p) {
  if (!values.length) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Reads a text/event-stream as it arrives, chunk by chunk, as the HTML standard says: lines end in
 * LF, CR or CRLF; a blank line dispatches; comments (":…") are skipped; `id:` sets the last event
 * id even on an event with no data (the stream's opening marker). Needed because EventSource cannot
 * send an Authorization header, so the page reads the stream with fetch.
 */
export class EventStreamParser {
  constructor() {
    this.buffer = "";
    this.lastEventId = null;
    this.resetEvent();
  }

  resetEvent() {
    this.type = "";
    this.data = [];
    this.sawId = false;
  }

  /** Takes the next chunk of text; returns the events it completed, each {id, type, data}. */
  push(chunk) {
    this.buffer += chunk;
    const events = [];
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      if (end < 0) {
        break;
      }
      // A lone CR at the very end may be the first half of a CRLF: wait for more.
      if (this.buffer[end] === "\r" && end === this.buffer.length - 1) {
        break;
      }
      const line = this.buffer.slice(0, end);
      const width = this.buffer.startsWith("\r\n", end) ? 2 : 1;
      this.buffer = this.buffer.slice(end + width);
      const event = this.line(line);
      if (event) {
        events.push(event);
      }
    }
    return events;
  }

  line(line) {
    if (line === "") {
      const event = this.data.length
        ? { id: this.lastEventId, type: this.type || "message", data: this.data.join("\n") }
        : null;
      this.resetEvent();
      return event;
    }
    if (line.startsWith(":")) {
      return null;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "data") {
      this.data.push(value);
    } else if (field === "event") {
      this.type = value;
    } else if (field === "id" && !value.includes("\0")) {
      this.lastEventId = value;
    }
    return null;
  }
}

/** A pool of the model from the pools API's object. */
export function poolFromApi(info) {
  return {
    name: info.name,
    size: info.size,
    ttlMillis: parseDuration(info.lease_ttl),
    overflow: info.overflow,
    waiting: info.waiting || 0,
    tokens: new Map(),
  };
}

/** A token of the model from the token list; its end is estimated as activation + TTL (renewals show once they happen). */
export function tokenFromApi(item, ttlMillis) {
  const activatedAt = parseTime(item.activated_at);
  const active = item.state === "active";
  return {
    id: item.token_id,
    state: active ? "active" : "available",
    user: active ? item.current_user_id : null,
    activatedAt,
    expiresAt: active && activatedAt !== null && Number.isFinite(ttlMillis) ? activatedAt + ttlMillis : null,
  };
}

/**
 * Applies one change of the stream to the pools of the model (a Map of name → pool). Returns
 * "applied", or "unknown" when the pool or token is not in the model (the page then reads the
 * pools again: a pool was created or grew).
 */
export function applyChange(pools, change) {
  const pool = pools.get(change.pool);
  const token = pool && pool.tokens.get(change.token_id);
  if (!token) {
    return "unknown";
  }
  if (change.type === "granted" || change.type === "renewed") {
    token.state = "active";
    token.user = change.user_id;
    token.activatedAt = parseTime(change.started_at);
    token.expiresAt = parseTime(change.expires_at);
  } else if (ENDING_TYPES.includes(change.type)) {
    token.state = "available";
    token.user = null;
    token.activatedAt = null;
    token.expiresAt = null;
  }
  return "applied";
}

/** Counts of a pool's cells by state at `now`. */
export function poolCounts(pool, now) {
  const counts = { free: 0, held: 0, expiring: 0 };
  for (const token of pool.tokens.values()) {
    counts[cellState(token, now, pool.ttlMillis)] += 1;
  }
  return counts;
}

/** The feed line of a change: what happened, in which pool, to whom (user ids shortened). */
export function describeChange(change) {
  const user = shortId(change.user_id);
  const token = shortId(change.token_id);
  const verbs = {
    granted: `${user} was granted ${token}`,
    renewed: `${user} renewed ${token}`,
    released: `${user} released ${token}`,
    expired: `${user}'s lease of ${token} expired`,
    evicted: `${user} was evicted from ${token}`,
    revoked: `${user}'s lease of ${token} was revoked`,
    cleared: `${user}'s lease of ${token} was cleared`,
  };
  return verbs[change.type] || `${change.type}: ${token}`;
}

/**
 * The latest changes, newest first, at most `size`. Entries are {key, at, type, pool, text}; the
 * stream's id is the key (ids only go up), so an entry seen twice after a resume is kept once.
 */
export class Feed {
  constructor(size = FEED_SIZE) {
    this.size = size;
    this.entries = [];
    this.keys = new Set();
  }

  add(entry) {
    if (entry.key !== undefined && entry.key !== null) {
      if (this.keys.has(entry.key)) {
        return false;
      }
      this.keys.add(entry.key);
    }
    this.entries.unshift(entry);
    while (this.entries.length > this.size) {
      const dropped = this.entries.pop();
      this.keys.delete(dropped.key);
    }
    return true;
  }

  addChange(change, now) {
    return this.add({
      key: change.id === undefined ? null : String(change.id),
      at: parseTime(change.ended_at) ?? parseTime(change.started_at) ?? now,
      type: change.type,
      pool: change.pool,
      text: describeChange(change),
    });
  }
}

/** Events per second over the last `seconds`, in buckets of one second. */
export class RateCounter {
  constructor(seconds = 300) {
    this.seconds = seconds;
    this.buckets = new Map();
  }

  add(at, count = 1) {
    const second = Math.floor(at / 1000);
    this.buckets.set(second, (this.buckets.get(second) || 0) + count);
  }

  /** [[time in ms, count], …] for each second from `now - seconds` to the last whole second before `now`. */
  series(now) {
    const last = Math.floor(now / 1000) - 1;
    const first = last - this.seconds + 1;
    for (const second of this.buckets.keys()) {
      if (second < first) {
        this.buckets.delete(second);
      }
    }
    const points = [];
    for (let second = first; second <= last; second++) {
      points.push([second * 1000, this.buckets.get(second) || 0]);
    }
    return points;
  }
}

/** Hold times of the leases that ended in the last `windowMillis`, and their percentiles. */
export class HoldTimes {
  constructor(windowMillis = 300_000) {
    this.windowMillis = windowMillis;
    this.samples = [];
  }

  /** Takes an ending change; its hold is from its start to its end (whole seconds, as the API gives them). */
  addChange(change, now) {
    const started = parseTime(change.started_at);
    const ended = parseTime(change.ended_at);
    if (started === null || ended === null || !ENDING_TYPES.includes(change.type)) {
      return;
    }
    this.samples.push({ at: now, hold: Math.max(0, ended - started) });
  }

  /** {p50, p90, p99, count} in ms of the holds in the window at `now` (percentiles null if none). */
  percentiles(now) {
    this.samples = this.samples.filter((sample) => sample.at > now - this.windowMillis);
    const holds = this.samples.map((sample) => sample.hold);
    return { p50: percentile(holds, 50), p90: percentile(holds, 90), p99: percentile(holds, 99), count: holds.length };
  }
}

/** Points of a series over time, at most `limit` (the oldest dropped). */
export class History {
  constructor(limit = 300) {
    this.limit = limit;
    this.points = [];
  }

  add(at, value) {
    this.points.push([at, value]);
    if (this.points.length > this.limit) {
      this.points.splice(0, this.points.length - this.limit);
    }
  }
}

/** Milliseconds to wait before reconnect attempt number `attempt` (0 first): 0.5 s doubling, at most 5 s. */
export function reconnectDelay(attempt) {
  return Math.min(5000, 500 * 2 ** Math.max(0, attempt));
}

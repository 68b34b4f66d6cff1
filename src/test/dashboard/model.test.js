// Unit tests of the dashboard's page logic (src/main/resources/dashboard/model.js and the pure
// part of charts.js), run by DashboardModelTest with `node --test` on copies under target/.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EventStreamParser, Feed, HoldTimes, History, RateCounter, applyChange, cellState, describeChange,
  expiringThreshold, parseDuration, percentile, poolCounts, poolFromApi, reconnectDelay, shortId, timeLeft, tokenFromApi,
} from "./model.js";
import { niceCeiling } from "./charts.js";

const USER = "550e8400-e29b-41d4-a716-446655440000";
const OTHER = "660e8400-e29b-41d4-a716-446655440001";
const TOKEN = "c1ab147f-1d6e-4a7c-9c47-5e4b1f0a9d21";

test("user and token ids are shortened to their first eight characters", () => {
  assert.equal(shortId(USER), "550e8400");
  assert.equal(shortId("abc"), "abc");
  assert.equal(shortId(null), "—");
  assert.equal(shortId(undefined), "—");
});

test("ISO-8601 durations of the API are read in milliseconds", () => {
  assert.equal(parseDuration("PT2M"), 120_000);
  assert.equal(parseDuration("PT0.5S"), 500);
  assert.equal(parseDuration("PT1H30M"), 5_400_000);
  assert.equal(parseDuration("P1DT1S"), 86_401_000);
  assert.ok(Number.isNaN(parseDuration("P")));
  assert.ok(Number.isNaN(parseDuration("PT")));
  assert.ok(Number.isNaN(parseDuration("2 minutes")));
  assert.ok(Number.isNaN(parseDuration(null)));
});

test("a held token is about to expire in its last quarter TTL, between 5 s and 30 s before its end", () => {
  assert.equal(expiringThreshold(120_000), 30_000);
  assert.equal(expiringThreshold(60_000), 15_000);
  assert.equal(expiringThreshold(4_000), 5_000);
  assert.equal(expiringThreshold(NaN), 30_000);
  const now = 1_000_000;
  const held = (left) => ({ state: "active", expiresAt: now + left });
  assert.equal(cellState(held(16_000), now, 60_000), "held");
  assert.equal(cellState(held(15_000), now, 60_000), "expiring");
  assert.equal(cellState(held(-1), now, 60_000), "expiring");
  assert.equal(cellState({ state: "active", expiresAt: null }, now, 60_000), "held");
  assert.equal(cellState({ state: "available", expiresAt: null }, now, 60_000), "free");
  assert.equal(cellState(undefined, now, 60_000), "free");
});

test("time left reads as hours and minutes, minutes and seconds, or seconds, rounded up", () => {
  assert.equal(timeLeft(3_720_000), "1h 02m");
  assert.equal(timeLeft(125_000), "2m 05s");
  assert.equal(timeLeft(60_000), "1m 00s");
  assert.equal(timeLeft(11_200), "12s");
  assert.equal(timeLeft(0), "ending");
  assert.equal(timeLeft(-5), "ending");
  assert.equal(timeLeft(null), "unknown");
});

test("percentiles are nearest-rank, of unsorted values, and null for none", () => {
  const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(values, 50), 5);
  assert.equal(percentile(values, 90), 9);
  assert.equal(percentile(values, 99), 10);
  assert.equal(percentile(values, 100), 10);
  assert.equal(percentile([42], 1), 42);
  assert.equal(percentile([], 50), null);
  assert.deepEqual(values.slice(0, 3), [5, 1, 4], "the input is not sorted in place");
});

test("the event stream is parsed across chunk boundaries, with ids, types, comments and every line ending", () => {
  const parser = new EventStreamParser();
  assert.deepEqual(parser.push(": live changes of all pools\n\nid: 7\n\n"), []);
  assert.equal(parser.lastEventId, "7", "an id alone marks where the stream starts");
  assert.deepEqual(parser.push("id: 8\nevent: gran"), []);
  const events = parser.push('ted\ndata: {"a":1}\n\n: keep-alive\n\nid: 9\r\nevent: released\r\ndata: x\r\ndata: y\r\n\r');
  assert.deepEqual(events, [{ id: "8", type: "granted", data: '{"a":1}' }]);
  assert.deepEqual(parser.push("\n"), [{ id: "9", type: "released", data: "x\ny" }], "a CRLF split between chunks is one line end");
  assert.deepEqual(parser.push("data:no space\r\r"), [], "a CR at the end of a chunk may be half a CRLF");
  assert.deepEqual(parser.push(": comment\n"), [{ id: "9", type: "message", data: "no space" }]);
  assert.deepEqual(parser.push('event: reset\ndata: {"reason":"other_run"}\nid: 12\n\n'),
    [{ id: "12", type: "reset", data: '{"reason":"other_run"}' }]);
});

function model() {
  const pool = poolFromApi({ name: "pair", size: 2, lease_ttl: "PT1M", overflow: "evict_oldest", waiting: 0 });
  pool.tokens.set(TOKEN, tokenFromApi({ token_id: TOKEN, state: "active", current_user_id: USER,
    activated_at: "2025-12-19T15:12:02Z", released_at: null }, pool.ttlMillis));
  pool.tokens.set("t2", tokenFromApi({ token_id: "t2", state: "available", current_user_id: null,
    activated_at: null, released_at: null }, pool.ttlMillis));
  return new Map([["pair", pool]]);
}

test("tokens read from the API are held until activation plus TTL; free ones have no holder", () => {
  const pools = model();
  const token = pools.get("pair").tokens.get(TOKEN);
  assert.equal(token.user, USER);
  assert.equal(token.expiresAt, Date.parse("2025-12-19T15:13:02Z"));
  assert.equal(pools.get("pair").tokens.get("t2").user, null);
  assert.deepEqual(poolCounts(pools.get("pair"), Date.parse("2025-12-19T15:12:10Z")), { free: 1, held: 1, expiring: 0 });
  assert.deepEqual(poolCounts(pools.get("pair"), Date.parse("2025-12-19T15:12:50Z")), { free: 1, held: 0, expiring: 1 });
});

test("changes move tokens between held and free; one of an unknown pool or token asks for a reload", () => {
  const pools = model();
  const change = (type, extra) => ({ pool: "pair", token_id: TOKEN, user_id: USER, started_at: "2025-12-19T15:12:02Z",
    expires_at: null, ended_at: "2025-12-19T15:12:30Z", type, ...extra });
  assert.equal(applyChange(pools, change("evicted")), "applied");
  assert.equal(pools.get("pair").tokens.get(TOKEN).state, "available");
  assert.equal(applyChange(pools, change("granted", { user_id: OTHER, started_at: "2025-12-19T15:12:30Z",
    expires_at: "2025-12-19T15:13:30Z", ended_at: null })), "applied");
  const token = pools.get("pair").tokens.get(TOKEN);
  assert.deepEqual([token.state, token.user, token.expiresAt], ["active", OTHER, Date.parse("2025-12-19T15:13:30Z")]);
  assert.equal(applyChange(pools, change("renewed", { user_id: OTHER, expires_at: "2025-12-19T15:14:00Z" })), "applied");
  assert.equal(pools.get("pair").tokens.get(TOKEN).expiresAt, Date.parse("2025-12-19T15:14:00Z"));
  for (const type of ["released", "expired", "revoked", "cleared"]) {
    applyChange(pools, change("granted", { expires_at: "2025-12-19T15:14:00Z" }));
    applyChange(pools, change(type));
    assert.equal(pools.get("pair").tokens.get(TOKEN).state, "available", type);
  }
  assert.equal(applyChange(pools, change("granted", { pool: "new-pool" })), "unknown");
  assert.equal(applyChange(pools, change("granted", { token_id: "not-loaded" })), "unknown");
});

test("the feed is newest first, at most its size, with short user ids, and keeps a change seen twice once", () => {
  const feed = new Feed(3);
  for (let id = 1; id <= 4; id++) {
    feed.addChange({ id, type: id === 2 ? "evicted" : "granted", pool: "pair", token_id: TOKEN, user_id: USER,
      started_at: "2025-12-19T15:12:02Z", ended_at: null }, 0);
  }
  assert.deepEqual(feed.entries.map((entry) => entry.key), ["4", "3", "2"]);
  assert.equal(feed.addChange({ id: 3, type: "granted", pool: "pair", token_id: TOKEN, user_id: USER }, 0), false);
  assert.equal(feed.entries.length, 3);
  assert.equal(feed.entries[2].text, "550e8400 was evicted from c1ab147f");
  assert.equal(feed.addChange({ id: 1, type: "granted", pool: "pair", token_id: TOKEN, user_id: USER }, 0), true,
    "an id that left the feed may come back");
  assert.equal(describeChange({ type: "expired", user_id: USER, token_id: TOKEN }), "550e8400's lease of c1ab147f expired");
  assert.equal(feed.entries[0].at, 0, "a change without times is placed when it arrived");
});

test("activations are counted per second over the window, empty seconds as zero", () => {
  const rate = new RateCounter(5);
  rate.add(10_100);
  rate.add(10_900);
  rate.add(12_000);
  rate.add(1_000);
  assert.deepEqual(rate.series(15_500), [[10_000, 2], [11_000, 0], [12_000, 1], [13_000, 0], [14_000, 0]]);
  assert.ok(!rate.buckets.has(1), "seconds before the window are forgotten");
});

test("hold times are those of the leases that ended in the window, from start to end", () => {
  const holds = new HoldTimes(60_000);
  const ended = (seconds, type = "released") => ({ type, started_at: "2025-12-19T15:12:00Z",
    ended_at: new Date(Date.parse("2025-12-19T15:12:00Z") + seconds * 1000).toISOString() });
  holds.addChange(ended(10), 1_000);
  holds.addChange(ended(20, "evicted"), 50_000);
  holds.addChange(ended(30, "expired"), 55_000);
  holds.addChange({ type: "granted", started_at: "2025-12-19T15:12:00Z", ended_at: null }, 55_000);
  assert.deepEqual(holds.percentiles(56_000), { p50: 20_000, p90: 30_000, p99: 30_000, count: 3 });
  assert.deepEqual(holds.percentiles(70_000), { p50: 20_000, p90: 30_000, p99: 30_000, count: 2 });
  assert.deepEqual(holds.percentiles(200_000), { p50: null, p90: null, p99: null, count: 0 });
});

test("a history keeps its newest points; reconnects back off from 0.5 s to 5 s", () => {
  const history = new History(2);
  history.add(1, 10);
  history.add(2, 20);
  history.add(3, 30);
  assert.deepEqual(history.points, [[2, 20], [3, 30]]);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(reconnectDelay), [500, 1000, 2000, 4000, 5000, 5000]);
});

test("a chart's y axis ends at 1, 2 or 5 times a power of ten", () => {
  assert.equal(niceCeiling(0), 1);
  assert.equal(niceCeiling(3), 5);
  assert.equal(niceCeiling(7.5), 10);
  assert.equal(niceCeiling(120), 200);
  assert.equal(niceCeiling(40, 100), 100);
});

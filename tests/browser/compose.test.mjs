// Chromium against docker/docker-compose.yml running in Podman (scripts/compose-test starts the
// stack and runs this through scripts/test-browser with BROWSER_TEST_FILE=compose.test.mjs):
//   a  the demo page, through the load balancer's published port, on three replicas: user, topic
//      and broadcast events
//   b  `podman stop` of one replica (SIGTERM, the compose file's stop_grace_period): its
//      EventSources move to the other two and every page ends with exactly the history
//      published before, during and after, in order, resumed with Last-Event-ID
// Env: COMPOSE_PROJECT, COMPOSE_LB_PORT, COMPOSE_STATS_PORT, COMPOSE_STOP_GRACE (seconds),
// CHROMIUM. Observes the stack only as users do: the published ports and the podman CLI.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const execFileP = promisify(execFile);
const HOST = "127.0.0.1";
const PROJECT = process.env.COMPOSE_PROJECT;
const LB = Number(process.env.COMPOSE_LB_PORT);
const STATS = Number(process.env.COMPOSE_STATS_PORT);
const GRACE = Number(process.env.COMPOSE_STOP_GRACE || 15);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "ssegw-compose-browser-"));
const WAIT = 20000;
const GWS = ["gw1", "gw2", "gw3"];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(...a);
const ctr = (service) => `${PROJECT}_${service}_1`; // podman-compose 1.0.3's container names

async function waitFor(what, fn, timeout = WAIT, interval = 100) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out (${timeout} ms) waiting for ${what}` + (last ? `: ${last}` : ""));
    await sleep(interval);
  }
}

const podman = async (...args) => (await execFileP("podman", args, { timeout: 90000 })).stdout.trim();

// open streams per replica from haproxy's stats CSV (scur of each gateways server)
async function streams() {
  const r = await fetch(`http://${HOST}:${STATS}/stats;csv`, { signal: AbortSignal.timeout(3000) });
  const rows = (await r.text()).split("\n");
  const head = rows[0].replace(/^# /, "").split(",");
  const out = {};
  for (const line of rows.slice(1)) {
    const f = line.split(","); const row = Object.fromEntries(head.map((h, i) => [h, f[i]]));
    if (row.pxname === "gateways" && GWS.includes(row.svname)) out[row.svname] = { scur: Number(row.scur), status: row.status };
  }
  return out;
}
const counts = async () => { const s = await streams(); return GWS.map((g) => s[g].scur); };

async function lbPublish(body) {
  const r = await fetch(`http://${HOST}:${LB}/admin/publish`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}
const fcall = (channel, payload) => podman("exec", ctr("redis"), "redis-cli", "FCALL", "sse_publish", "1", channel, JSON.stringify(payload));

let context;
before(async () => {
  context = await chromium.launchPersistentContext(path.join(TMP, "profile"), {
    executablePath: CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  if (context) await context.close().catch(() => {});
  fs.rmSync(TMP, { recursive: true, force: true });
});

const demoUrl = (q) => `http://${HOST}:${LB}/demo/?${new URLSearchParams(q)}`;
const pageState = (page) => page.evaluate(() => ({
  readyState: window.demo.readyState, reconnects: window.demo.reconnects, resumedFrom: window.demo.resumedFrom,
  states: window.demo.states, events: window.demo.events.map((e) => ({ type: e.type, id: e.id, data: e.data })),
  system: window.demo.system.map((e) => e.type),
}));
async function openPage(q) {
  const page = await context.newPage();
  page.on("pageerror", (e) => log("page error:", e.message));
  await page.goto(demoUrl(q));
  await page.waitForFunction(() => window.demo.readyState === 1, null, { timeout: WAIT });
  return page;
}

test("a: the demo page through the compose load balancer gets user, topic and broadcast events on three replicas", async () => {
  const users = ["alice", "bob", "carol"];
  const pages = [];
  for (const u of users) pages.push(await openPage({ user: u, topics: "news" }));
  const c = await waitFor("3 streams, one per replica", async () => { const x = await counts(); return x.join() === "1,1,1" ? x : null; });
  log("streams per replica (gw1, gw2, gw3):", c.join(", "));
  for (const u of users) assert.equal((await lbPublish({ channel: `user:${u}`, event: "demo", data: { to: u } })).status, 202);
  assert.equal((await lbPublish({ channel: "topic:news", event: "notice", data: "topic news" })).status, 202);
  await podman("exec", ctr("redis"), "redis-cli", "PUBLISH", "sse:broadcast", JSON.stringify({ event: "notice", data: "to everyone" }));
  for (const [i, u] of users.entries()) {
    await pages[i].waitForFunction(() => window.demo.events.length >= 3, null, { timeout: WAIT });
  }
  await sleep(500); // anything extra would show up now
  for (const [i, u] of users.entries()) {
    const st = await pageState(pages[i]);
    assert.deepEqual(st.events.map((e) => `${e.type}:${e.data}`).sort(),
      [`demo:{"to":"${u}"}`, "notice:to everyone", "notice:topic news"], `page of ${u}`);
  }
  for (const p of pages) await p.close();
  await waitFor("no open streams", async () => (await counts()).every((x) => x === 0));
});

test("b: podman stop of a replica moves its EventSources to the others, every history event exactly once", async () => {
  const N = 6;
  const pages = [];
  for (let i = 0; i < N; i++) pages.push(await openPage({ user: `drain${i}`, topics: "drain" }));
  await waitFor("2 streams per replica", async () => (await counts()).join() === "2,2,2");
  const published = [];
  const pub = async (k) => published.push({ data: `e${k}`, id: await fcall("topic:drain", { event: "demo", data: `e${k}` }) });
  for (let k = 1; k <= 3; k++) await pub(k);
  for (const p of pages) await p.waitForFunction(() => window.demo.events.length >= 3, null, { timeout: WAIT });

  // podman-compose 1.0.3 does not pass stop_grace_period to podman, so the test reads it from
  // the compose file (scripts/compose-test) and stops as `docker compose stop` would.
  const t0 = Date.now();
  const stopping = podman("stop", "-t", String(GRACE), ctr("gw1"));
  // publish while gw1 drains: every page must get these, wherever it is
  let k = 4;
  const moved = waitFor("all 6 streams on gw2 and gw3", async () => {
    const x = await counts(); return x[0] === 0 && x[1] + x[2] === N ? x : null;
  }, GRACE * 1000 + 10000, 50);
  while (Date.now() - t0 < 1500) { await pub(k++); await sleep(100); }
  const after = await moved;
  const moveMs = Date.now() - t0;
  await stopping;
  const stopMs = Date.now() - t0;
  const exit = await podman("inspect", "-f", "{{.State.ExitCode}}", ctr("gw1"));
  log(`compose figure: drain move ${moveMs} ms (all ${N} EventSources on gw2/gw3: ${after.join(", ")}); podman stop returned after ${stopMs} ms, exit code ${exit}`);
  assert.equal(exit, "0", "gw1 exited by itself after its drain window (not killed at the grace period)");
  assert.ok(stopMs < GRACE * 1000, "within stop_grace_period");
  for (let j = 0; j < 3; j++) await pub(k++);
  for (const p of pages) await p.waitForFunction((n) => window.demo.events.length >= n, published.length, { timeout: WAIT });
  await sleep(500); // a duplicate would arrive now
  let reconnected = 0;
  for (const [i, p] of pages.entries()) {
    const st = await pageState(p);
    assert.deepEqual(st.events.map((e) => e.data), published.map((x) => x.data), `page ${i}: exactly the history, in order`);
    assert.deepEqual(st.events.map((e) => e.id), published.map((x) => x.id), `page ${i}: with sse_publish's positions`);
    assert.ok(!st.states.includes(2), `page ${i} never CLOSED`);
    assert.equal(st.system.length, 0, "no history-truncated");
    if (st.reconnects > 0) {
      reconnected++;
      assert.ok(published.some((x) => x.id === st.resumedFrom[0]), `page ${i} resumed from a Last-Event-ID it had seen`);
    }
  }
  log(`${reconnected} pages reconnected (resumed with Last-Event-ID), ${published.length} events each`);
  assert.equal(reconnected, 2, "exactly gw1's two EventSources moved");
  for (const p of pages) await p.close();
  await podman("start", ctr("gw1"));
  await waitFor("gw1 back UP in haproxy", async () => (await streams()).gw1.status === "UP", 30000);
});

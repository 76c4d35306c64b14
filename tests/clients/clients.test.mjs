// Resume positions with common non-browser SSE clients: the npm `eventsource` package in its
// fetch-based v3 (which keeps an id only from a block that has data) and its classic v2, against a
// real gateway and redis-server on loopback. Each client goes through a small TCP proxy the test
// controls, so it can cut the connection, hold the client's reconnect while events are published,
// and read the Last-Event-ID the client sent back.
//
// Run by scripts/test-clients (ctest: clients_eventsource). Env: SSEGW_BINARY.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EventSource as EventSourceV3 } from "eventsource";

const require = createRequire(import.meta.url);
const EventSourceV2 = require("eventsource-v2");

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BINARY = process.env.SSEGW_BINARY || path.join(ROOT, "build/sse-gateway");
const HOST = "127.0.0.1";
const POSITION = /^[0-9a-f]+\.\d+\.\d+$/;  // <epoch>.<seq>.<time>
const clients = { "eventsource@3": EventSourceV3, "eventsource@2": EventSourceV2 };

// ---------------------------------------------------------------- small bounded helpers

async function waitFor(predicate, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Parses one RESP reply at buf[i]; returns [value, next index] or null when incomplete. */
function parseResp(buf, i = 0) {
  const nl = buf.indexOf("\r\n", i);
  if (nl < 0) return null;
  const type = buf[i], line = buf.slice(i + 1, nl);
  if (type === "+" || type === ":") return [type === ":" ? Number(line) : line, nl + 2];
  if (type === "-") return [new Error(line), nl + 2];
  if (type === "$") {
    const n = Number(line);
    if (n < 0) return [null, nl + 2];
    if (buf.length < nl + 2 + n + 2) return null;
    return [buf.slice(nl + 2, nl + 2 + n), nl + 2 + n + 2];
  }
  if (type === "*") {
    const out = [];
    let at = nl + 2;
    for (let k = 0; k < Number(line); k++) {
      const r = parseResp(buf, at);
      if (!r) return null;
      out.push(r[0]);
      at = r[1];
    }
    return [out, at];
  }
  throw new Error(`unexpected RESP reply: ${buf}`);
}

/** One command on a fresh connection (ASCII replies only, enough here). */
function redisCall(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, HOST);
    let buf = "";
    const timer = setTimeout(() => { sock.destroy(); reject(new Error("redis timeout")); }, 5000);
    sock.on("error", (e) => { clearTimeout(timer); reject(e); });
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      const r = parseResp(buf);
      if (!r) return;
      clearTimeout(timer);
      sock.destroy();
      if (r[0] instanceof Error) reject(r[0]);
      else resolve(r[0]);
    });
    sock.write(`*${args.length}\r\n` +
               args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(""));
  });
}

async function httpJson(port, method, pathName, body) {
  const res = await fetch(`http://${HOST}:${port}${pathName}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

/**
 * A TCP proxy in front of the gateway. It records the head of every request it forwards, can
 * cut every open connection (drop()), and while held (hold()) parks new connections until
 * release(): the client's reconnect waits, deterministically, while the test publishes.
 */
class Proxy {
  constructor(target) {
    this.target = target;
    this.heads = [];
    this.open = new Set();
    this.parked = [];
    this.held = false;
    this.server = net.createServer((c) => (this.held ? this.parked.push(c) : this.pipe(c)));
  }
  async start() {
    await new Promise((r) => this.server.listen(0, HOST, r));
    this.port = this.server.address().port;
  }
  pipe(client) {
    const upstream = net.connect(this.target, HOST);
    this.open.add(client).add(upstream);
    let head = "";
    client.on("data", (d) => {
      if (head !== null) {
        head += d.toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end >= 0) { this.heads.push(head.slice(0, end)); head = null; }
      }
    });
    client.pipe(upstream).pipe(client);
    const done = () => { client.destroy(); upstream.destroy(); this.open.delete(client); this.open.delete(upstream); };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
  }
  hold() { this.held = true; }
  drop() { for (const s of this.open) s.destroy(); this.open.clear(); }
  release() {
    this.held = false;
    for (const c of this.parked.splice(0)) this.pipe(c);
  }
  close() { this.drop(); for (const c of this.parked) c.destroy(); this.server.close(); }
}

/** The Last-Event-ID header of a recorded request head, or null. */
function lastEventIdOf(head) {
  const m = /^last-event-id:[ \t]*(.*)$/im.exec(head);
  return m ? m[1].trim() : null;
}

// ---------------------------------------------------------------- servers

let tmp, redis, gateway, redisPort, port, adminPort;
let gatewayLog = "";

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "ssegw-clients-"));
  [redisPort, port, adminPort] = [await freePort(), await freePort(), await freePort()];
  redis = spawn("redis-server", ["--port", String(redisPort), "--bind", HOST, "--save", "",
                                 "--appendonly", "no", "--dir", tmp], { stdio: "ignore" });
  await waitFor(() => redisCall(redisPort, "PING").then((r) => r === "PONG", () => false),
                "redis-server to answer PING");
  const config = path.join(tmp, "gateway.json");
  writeFileSync(config, JSON.stringify({
    server: { host: HOST, port, admin_host: HOST, admin_port: adminPort, threads: 2,
              drain_seconds: 1 },
    sse: { retry_ms: 200, heartbeat_seconds: 5 },
    auth: { mode: "none" },
    redis: { url: `redis://${HOST}:${redisPort}` },
    log: { level: "warn" },
  }));
  gateway = spawn(BINARY, ["--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  gateway.stdout.on("data", (d) => (gatewayLog += d));
  gateway.stderr.on("data", (d) => (gatewayLog += d));
  gateway.on("error", (e) => (gatewayLog += `spawn ${BINARY}: ${e.message}\n`));
  await waitFor(() => {
    if (gateway.exitCode !== null || gatewayLog.includes("spawn "))
      throw new Error(`the gateway did not start:\n${gatewayLog}`);
    return httpJson(adminPort, "GET", "/readyz").then((r) => r.status === 200, () => false);
  }, "the gateway's /readyz");
});

after(async () => {
  if (gateway) {
    gateway.kill("SIGTERM");
    await waitFor(() => gateway.exitCode !== null || gateway.signalCode !== null, "gateway exit")
      .catch(() => gateway.kill("SIGKILL"));
  }
  if (redis) redis.kill("SIGKILL");
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- one client's life

/**
 * Opens `Impl` on a user's stream through a proxy, lets `firstLive` publish one live-only event
 * (what the issue found losing positions), cuts the connection, publishes three history events
 * while the reconnect is held, releases it, and returns what the client saw and sent.
 */
async function dropAndResume(Impl, user, livePayload) {
  const proxy = new Proxy(port);
  await proxy.start();
  const messages = [];   // every event the page's handlers see: [type, lastEventId, data]
  const es = new Impl(`http://${HOST}:${proxy.port}/events?user=${user}`);
  const record = (e) => messages.push([e.type, e.lastEventId, e.data]);
  es.onmessage = record;
  for (const type of ["live", "missed", "after", "history-truncated"]) es.addEventListener(type, record);
  let opens = 0;
  es.onopen = () => { opens += 1; };
  try {
    await waitFor(() => opens === 1 && proxy.heads.length === 1, "the first connection");
    // A live-only PUBLISH reaches the stream once the gateway has subscribed its channel.
    await waitFor(async () => (await redisCall(redisPort, "PUBSUB", "NUMSUB", `sse:user:${user}`))[1] === 1,
                  "the gateway's subscription to the user's channel");

    await redisCall(redisPort, "PUBLISH", `sse:user:${user}`, JSON.stringify(livePayload));
    await waitFor(() => messages.length === 1, "the live event");

    proxy.hold();
    proxy.drop();
    await waitFor(() => proxy.parked.length >= 1, "the client to reconnect");
    const published = [];
    for (let k = 0; k < 3; k++) {
      const r = await httpJson(adminPort, "POST", "/publish",
                               { channel: `user:${user}`, event: "missed", data: `m${k}` });
      assert.equal(r.status, 202, `publish ${k}: ${JSON.stringify(r.json)}`);
      published.push(["missed", r.json.id, `m${k}`]);
    }
    proxy.release();
    await waitFor(() => messages.length >= 4, "the three missed events after the reconnect");
    // Live again: a fresh event arrives after the replay, exactly once.
    const r = await httpJson(adminPort, "POST", "/publish",
                             { channel: `user:${user}`, event: "after", data: "a" });
    assert.equal(r.status, 202);
    await waitFor(() => messages.length >= 5, "the event published after the resume");
    return { messages, published, after: ["after", r.json.id, "a"], heads: proxy.heads, readyState: es.readyState };
  } finally {
    es.close();
    proxy.close();
  }
}

for (const [name, Impl] of Object.entries(clients)) {
  test(`${name}: a live event without an id, a drop, and nothing missed`, async () => {
    const user = `plain-${name.replace(/\W/g, "")}`;
    const got = await dropAndResume(Impl, user, { event: "live", data: "no id" });
    assert.equal(got.heads.length, 2, "one connection, one reconnect");
    const sent = lastEventIdOf(got.heads[1]);
    assert.match(sent ?? "", POSITION,
                 `the reconnect must carry the position the stream started with, got ${sent}`);
    // (What a client reports as the live event's lastEventId differs: v2 the stream's, v3 "".)
    assert.deepEqual([got.messages[0][0], got.messages[0][2]], ["live", "no id"]);
    assert.deepEqual(got.messages.slice(1), [...got.published, got.after],
                     "no history-truncated, the three missed events in order, then live");
    assert.notEqual(got.readyState, 2, "the client is not CLOSED");
  });

  test(`${name}: a live event with its own id, a drop, and nothing missed`, async () => {
    const user = `custom-${name.replace(/\W/g, "")}`;
    const got = await dropAndResume(Impl, user, { event: "live", id: "custom-1", data: "own id" });
    const [type, seenId, data] = got.messages[0];
    assert.deepEqual([type, seenId, data], ["live", "custom-1", "own id"],
                     "the payload's own id is what the page sees on that event");
    const sent = lastEventIdOf(got.heads[1]);
    assert.match(sent ?? "", POSITION,
                 `the reconnect must carry a gateway position, not the payload's id; got ${sent}`);
    assert.deepEqual(got.messages.slice(1), [...got.published, got.after],
                     "no history-truncated, the three missed events in order, then live");
  });
}

"""Fault tests (issue 3): what the gateway does when clients, Redis or an instance misbehave.

One class per scenario, each bounded well under 60 s, all on 127.0.0.1 with processes the test
starts and kills itself. Every scenario prints its figures (lines starting with [faults/...]);
docs/security.md quotes them.

  SlowConsumerTest        20 clients stop reading while 20 others read 5 MB of broadcasts
  ChurnTest               10,000 connect / read head / close against a 2-shard gateway
  SlowlorisTest           200 request heads trickled one byte per 0.5 s
  HeaderBombTest          oversized heads/targets/queries, junk, TLS, NUL, bad UTF-8, HTTP/1.0,
                          pipelining; the gateway still serves afterwards
  RedisKillTest           kill -9 redis-server under load, restart it with its AOF
  InstanceKillTest        kill -9 one of 3 gateways behind haproxy under load
  IsolationTest           100,000 random user deliveries over 2 gateways; JWT user pinning

Many SSE clients run in ONE selector thread (ssegw_testlib.SseFleet) so Python is not the
bottleneck on a small machine. A fleet client commits an `id:` only when its block is complete
(as EventSource does) and resumes with it."""

import json
import os
import random
import selectors
import socket
import subprocess
import threading
import time
import unittest

from ssegw_testlib import (HOST, FailureAwareMixin, GatewayTestCase, RedisServer, RespClient,
                           RespError, SseClient, SseFleet, SseFleetClient, Topology,
                           WaitAborted, http_request, http_status, kill_process_group, make_jwt,
                           percentile, publish_http, wait_until)


# --------------------------------------------------------------------------------------------
# process figures

def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def rss_kb(pid):
    return proc_status_kb(pid, "VmRSS:")


def hwm_kb(pid):
    return proc_status_kb(pid, "VmHWM:")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def log_lines(gw, words=("warn", "error", "crit", "slow", "closed", "timeout"), limit=25):
    lines = gw.log_text().splitlines()
    hits = [l for l in lines if any(w in l.lower() for w in words)]
    return "\n    ".join(hits[-limit:])


# --------------------------------------------------------------------------------------------
# delivery checks of a fleet whose handler appends event numbers (int) or ("truncated", data)

def has_all(clients, got, expected):
    return all(set(expected[c.idx]) <= {x for x in got[c.idx] if isinstance(x, int)}
               for c in clients)


def tally(clients, got, expected, allowed=frozenset()):
    """(lost, duplicates, out of order, unexpected, history-truncated), up to 5 examples
    (client, missing, unexpected, connects, ends, sent id). `allowed`: numbers that may arrive
    without being expected."""
    lost = dups = disorder = foreign = truncated = 0
    examples = []
    for c in clients:
        seq = [x for x in got[c.idx] if isinstance(x, int)]
        truncated += len(got[c.idx]) - len(seq)
        have = set(seq)
        miss = set(expected[c.idx]) - have
        extra = have - set(expected[c.idx]) - allowed
        lost += len(miss)
        foreign += len(extra)
        dups += len(seq) - len(have)
        disorder += sum(1 for a, b in zip(seq, seq[1:]) if b <= a)
        if (miss or extra or len(seq) != len(have)) and len(examples) < 5:
            examples.append((c.idx, sorted(miss)[:5], sorted(extra)[:5], c.connects,
                             c.ends, c.sent_id))
    return (lost, dups, disorder, foreign, truncated), examples


class AofRedisServer(RedisServer):
    """redis-server with appendonly yes / appendfsync always in its own dir, so a kill -9 keeps
    every acknowledged write (streams, sequence, function library)."""

    persistence = ("--appendonly", "yes", "--appendfsync", "always")
    no_ping_message = "redis-server (AOF) on %d did not answer PING: %s"

    def start(self, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            os.makedirs(self.dir, exist_ok=True)
        return super().start(timeout)


class FaultCase(FailureAwareMixin, GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.t0 = time.monotonic()

    def report(self, tag, text):
        print("[faults/%s] %s" % (tag, text), flush=True)


# --------------------------------------------------------------------------------------------
# 1. slow consumers

SLOW_EVENTS = 1000
SLOW_EVENT_BYTES = 5000
SLOW_RATE = 200.0      # events/s
SLOW_CLIENTS = 20
NORMAL_CLIENTS = 20
MAX_QUEUE = 262144


class SlowConsumerTest(FaultCase):

    def _publish_run(self, gw, first, n, pad):
        """n broadcast events through POST /publish at SLOW_RATE; payload 'seq|t_pub|pad'."""
        t0 = time.monotonic()
        errors = []
        for k in range(n):
            delay = t0 + k / SLOW_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = "%d|%.6f|%s" % (first + k, time.time(), pad)
            status, body = publish_http(gw.admin_port, {"channel": "broadcast", "event": "b",
                                                        "data": data})
            if status != 202:
                errors.append((status, body))
        return time.monotonic() - t0, errors

    def test_slow_consumers_are_cut_others_unaffected(self):
        gw = self.start_gateway(config={"sse": {"max_queue_bytes": MAX_QUEUE}}, threads=2,
                                log_level="info")
        pid = gw.pid()
        got = {}     # client idx -> list of seq
        lat = {}     # run -> list of latencies (s)

        def handler(c, wall, bid, ev, payload):
            seq_s, t_s, _ = payload.split(b"|", 2)
            seq = int(seq_s)
            got[c.idx].append(seq)
            lat.setdefault(0 if seq < SLOW_EVENTS else 1, []).append(wall - float(t_s))

        clients = [SseFleetClient(i, gw.port, "/events?user=n%d" % i)
                   for i in range(NORMAL_CLIENTS)]
        for c in clients:
            got[c.idx] = []
        fleet = SseFleet(clients, reconnect=False, handler=handler, name="normal").start()
        self.addCleanup(fleet.shutdown)
        fleet.wait(lambda: all(c.positioned for c in clients), 15, "normal clients up")
        pad = "x" * (SLOW_EVENT_BYTES - 30)

        # baseline: the same publish, no slow clients
        base_s, errs = self._publish_run(gw, 0, SLOW_EVENTS, pad)
        self.assertEqual(errs[:3], [])
        fleet.wait(lambda: all(len(got[c.idx]) >= SLOW_EVENTS for c in clients), 20,
                   lambda: "baseline deliveries %s" % [len(v) for v in got.values()])

        # 20 clients that connect and never read (small receive buffer set before connect)
        rss0 = rss_kb(pid)
        m0 = gw.metrics()
        slow = []
        for i in range(SLOW_CLIENTS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((HOST, gw.port))
            s.sendall(("GET /events?user=slow%d HTTP/1.1\r\nHost: x\r\n\r\n" % i).encode())
            slow.append(s)
            self.addCleanup(s.close)
        wait_until(lambda: gw.connections() == NORMAL_CLIENTS + SLOW_CLIENTS, 10)

        rss_peak = [rss0]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                try:
                    rss_peak.append(rss_kb(pid))
                except OSError:
                    return
                sampling.wait(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        slow_s, errs = self._publish_run(gw, SLOW_EVENTS, SLOW_EVENTS, pad)
        self.assertEqual(errs[:3], [])
        fleet.wait(lambda: all(len(got[c.idx]) >= 2 * SLOW_EVENTS for c in clients), 20,
                   lambda: "deliveries with slow clients %s" % [len(v) for v in got.values()])
        sampling.set()
        sampler.join(timeout=2)

        # every slow client was closed by the server: read what is buffered, then EOF/RST
        def cut():
            m = gw.metrics()
            return m.get("ssegw_slow_consumer_disconnects_total") - \
                m0.get("ssegw_slow_consumer_disconnects_total") >= SLOW_CLIENTS
        try:
            wait_until(cut, 15)
        except AssertionError:
            pass   # asserted below with the figures
        closed, buffered = 0, []
        for s in slow:
            s.settimeout(0.5)
            n = 0
            deadline = time.monotonic() + 5
            ended = False
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(1 << 16)
                except socket.timeout:
                    break
                except OSError:       # reset by the server
                    ended = True
                    break
                if not chunk:
                    ended = True
                    break
                n += len(chunk)
            buffered.append(n)
            closed += ended
        m1 = gw.metrics()
        rss1 = rss_kb(pid)
        fleet.shutdown()
        disc = m1.get("ssegw_slow_consumer_disconnects_total") - \
            m0.get("ssegw_slow_consumer_disconnects_total")
        p99_base = percentile(lat.get(0, []), 99) * 1000
        p99_slow = percentile(lat.get(1, []), 99) * 1000
        p50_base = percentile(lat.get(0, []), 50) * 1000
        p50_slow = percentile(lat.get(1, []), 50) * 1000
        bound = max(2 * p99_base, p99_base + 20)
        self.report("slow", "%d normal + %d non-reading clients (SO_RCVBUF 4096), "
                    "max_queue_bytes %d; %d x %d B broadcasts per run at %.0f/s "
                    "(baseline run %.1fs, slow run %.1fs)"
                    % (NORMAL_CLIENTS, SLOW_CLIENTS, MAX_QUEUE, SLOW_EVENTS, SLOW_EVENT_BYTES,
                       SLOW_RATE, base_s, slow_s))
        self.report("slow", "slow clients closed by the server %d/%d (bytes they had buffered: "
                    "min %d max %d); ssegw_slow_consumer_disconnects_total +%d"
                    % (closed, SLOW_CLIENTS, min(buffered), max(buffered), disc))
        self.report("slow", "gateway RSS %.1f MB -> %.1f MB (growth %.1f MB, peak during run "
                    "%.1f MB, VmHWM %.1f MB)"
                    % (rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024, max(rss_peak) / 1024,
                       hwm_kb(pid) / 1024))
        self.report("slow", "normal clients: %d/%d events each; publish->receive latency "
                    "baseline p50 %.1f ms p99 %.1f ms; with slow clients p50 %.1f ms p99 %.1f "
                    "ms (bound %.1f ms)"
                    % (min(len(v) for v in got.values()), 2 * SLOW_EVENTS, p50_base, p99_base,
                       p50_slow, p99_slow, bound))
        self.assertEqual(closed, SLOW_CLIENTS, "slow clients not closed by the server; log:\n"
                         "    " + log_lines(gw))
        self.assertGreaterEqual(disc, SLOW_CLIENTS)
        self.assertLess(rss1 - rss0, 100 * 1024)
        self.assertLess(max(rss_peak) - rss0, 100 * 1024)
        for c in clients:
            self.assertEqual(got[c.idx], list(range(2 * SLOW_EVENTS)),
                             "normal client %d missed or reordered events" % c.idx)
            self.assertIsNone(c.closed_at, "normal client %d was disconnected" % c.idx)
        self.assertLessEqual(p99_slow, bound, "slow clients slowed the others down")
        wait_until(lambda: gw.connections() == 0, 10)
        self.assertTrue(gw.running())


# --------------------------------------------------------------------------------------------
# 2. connect / disconnect churn

CHURN_CONNECTS = 10000
CHURN_THREADS = 4


class ChurnTest(FaultCase):

    def test_connect_disconnect_churn(self):
        gw = self.start_gateway(threads=2, log_level="warn")
        pid = gw.pid()
        time.sleep(0.3)
        fd0, rss0 = fd_count(pid), rss_kb(pid)
        m0 = gw.metrics()
        statuses = {}
        errors = []
        lock = threading.Lock()
        per = CHURN_CONNECTS // CHURN_THREADS

        def worker(t):
            local = {}
            for k in range(per):
                i = t * per + k
                try:
                    s = socket.create_connection((HOST, gw.port), timeout=5)
                    try:
                        s.sendall(("GET /events?user=ch%d HTTP/1.1\r\nHost: x\r\n\r\n"
                                   % i).encode())
                        data = b""
                        while b"\r\n\r\n" not in data:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        st = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") \
                            else "none"
                        local[st] = local.get(st, 0) + 1
                    finally:
                        s.close()
                except OSError as exc:
                    with lock:
                        errors.append(repr(exc))
            with lock:
                for k, v in local.items():
                    statuses[k] = statuses.get(k, 0) + v

        t_start = time.monotonic()
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(CHURN_THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=50)
        elapsed = time.monotonic() - t_start
        self.assertFalse(any(th.is_alive() for th in threads), "churn threads stuck")
        rss_after = rss_kb(pid)
        wait_until(lambda: gw.connections() == 0, 15,
                   message=lambda: "ssegw_connections %s" % gw.connections())
        wait_until(lambda: fd_count(pid) <= fd0, 15,
                   message=lambda: "fds %d, baseline %d" % (fd_count(pid), fd0))
        m1 = gw.metrics()
        opened = m1.get("ssegw_connections_opened_total") - \
            m0.get("ssegw_connections_opened_total")
        closed = {l.get("reason"): v for l, v in m1.series("ssegw_connections_closed_total")}
        rss1 = rss_kb(pid)
        self.report("churn", "%d connects (head read, then close) from %d threads in %.1fs = "
                    "%.0f connects/s; statuses %s; client errors %d %s"
                    % (CHURN_CONNECTS, CHURN_THREADS, elapsed, CHURN_CONNECTS / elapsed,
                       statuses, len(errors), errors[:3]))
        self.report("churn", "opened_total +%d; closed by reason %s; connections gauge back to "
                    "%d; fds %d -> %d; RSS %.1f MB -> %.1f MB right after -> %.1f MB settled"
                    % (opened, closed, gw.connections(), fd0, fd_count(pid), rss0 / 1024,
                       rss_after / 1024, rss1 / 1024))
        self.assertEqual(errors, [])
        self.assertEqual(statuses, {"200": CHURN_CONNECTS})
        self.assertEqual(opened, CHURN_CONNECTS)
        self.assertLess(max(rss1, rss_after) - rss0, 50 * 1024)
        self.assertTrue(gw.running())
        self.assertEqual(gw.healthz(), 200)


# --------------------------------------------------------------------------------------------
# 3. slowloris

LORIS = 200


class SlowlorisTest(FaultCase):

    def test_slowloris_heads_are_cut(self):
        gw = self.start_gateway(config={"server": {"handshake_timeout_ms": 2000}}, threads=2,
                                log_level="info")
        m0 = gw.metrics()
        head = (b"GET /events?user=loris HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200)
        sel = selectors.DefaultSelector()
        socks = {}
        for i in range(LORIS):
            s = socket.create_connection((HOST, gw.port), timeout=5)
            s.setblocking(False)
            socks[s] = {"t": time.monotonic(), "sent": 0, "closed": None, "resp": b""}
            sel.register(s, selectors.EVENT_READ)
            self.addCleanup(s.close)
        t_first = time.monotonic()
        normal = None
        next_tick = time.monotonic()
        deadline = time.monotonic() + 8
        normal_ok_at = None
        while time.monotonic() < deadline and any(v["closed"] is None for v in socks.values()):
            now = time.monotonic()
            if now >= next_tick:
                next_tick += 0.5
                for s, st in socks.items():
                    if st["closed"] is None and st["sent"] < len(head):
                        try:
                            s.send(head[st["sent"]:st["sent"] + 1])
                            st["sent"] += 1
                        except OSError:
                            st["closed"] = now
                            sel.unregister(s)
            if normal is None and now - t_first > 1.0:
                # a normal client connecting in the middle of it
                normal = SseClient(gw.port, user="normal", timeout=3)
                self.addCleanup(normal.close)
                self.assertEqual(normal.status, 200)
                publish_http(gw.admin_port, {"channel": "user:normal", "event": "x",
                                             "data": "during"})
                normal.wait_for_events(1, timeout=3)
                normal_ok_at = time.monotonic() - t_first
            for key, _ in sel.select(max(0.0, min(0.05, next_tick - time.monotonic()))):
                s = key.fileobj
                st = socks[s]
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    st["resp"] += chunk
                    continue
                st["closed"] = time.monotonic()
                sel.unregister(s)
        sel.close()
        lifetimes = [st["closed"] - st["t"] for st in socks.values() if st["closed"]]
        open_left = sum(1 for st in socks.values() if st["closed"] is None)
        answered = sum(1 for st in socks.values() if st["resp"])
        m1 = gw.metrics()
        cut = m1.get("ssegw_connections_closed_total", reason="handshake_timeout") - \
            m0.get("ssegw_connections_closed_total", reason="handshake_timeout")
        # the normal stream outlived the slowloris window and still works
        publish_http(gw.admin_port, {"channel": "user:normal", "event": "x", "data": "after"})
        normal.wait_for_events(2, timeout=3)
        self.report("slowloris", "%d heads trickled 1 byte/0.5 s, handshake_timeout_ms 2000: "
                    "closed by the server %d (still open %d), after min %.2fs p50 %.2fs max "
                    "%.2fs; bytes sent each <= %d; answered with a response %d; "
                    "closed_total{reason=handshake_timeout} +%d"
                    % (LORIS, len(lifetimes), open_left, min(lifetimes or [0]),
                       percentile(lifetimes, 50), max(lifetimes or [0]),
                       max(st["sent"] for st in socks.values()), answered, cut))
        self.report("slowloris", "normal client connected %.1fs into the attack: 200, event "
                    "delivered; still streaming after it (%d events, closed=%s)"
                    % (normal_ok_at or -1, len(normal.events), normal.closed.is_set()))
        self.assertEqual(open_left, 0)
        self.assertGreaterEqual(min(lifetimes), 1.9)
        self.assertLessEqual(max(lifetimes), 4.0)
        self.assertEqual(cut, LORIS)
        self.assertFalse(normal.closed.is_set())
        self.assertEqual(gw.connections(), 1)


# --------------------------------------------------------------------------------------------
# 4. header bombs and junk

def raw_exchange(port, data, timeout=3.0):
    """Send bytes (errors while sending are tolerated: the server may answer and close first),
    read the answer. Returns (status or None, bytes received, closed by server)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    out = b""
    closed = False
    try:
        def send():
            try:
                s.sendall(data)
            except OSError:
                pass  # the server answered and closed first: its answer is what counts
        th = threading.Thread(target=send, daemon=True)
        th.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
        th.join(timeout=2)
    finally:
        s.close()
    status = None
    if out.startswith(b"HTTP/"):
        try:
            status = int(out.split(b" ", 2)[1])
        except (IndexError, ValueError):
            pass
    return status, out, closed


class HeaderBombTest(FaultCase):

    def test_header_bombs_and_junk(self):
        gw = self.start_gateway(threads=2, log_level="info")
        port = gw.port
        results = []

        def case(name, data, expect, timeout=2.0):
            status, out, closed = raw_exchange(port, data, timeout=timeout)
            results.append((name, status, expect, closed, out[:160]))
            self.assertTrue(gw.running(), "gateway died after %s; log:\n%s"
                            % (name, gw.log_tail()))
            return status, out, closed

        def req(target, extra=b""):
            return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"

        case("64 KB header", req(b"/events?user=a", b"X-Big: " + b"b" * 65536 + b"\r\n"),
             {431})
        case("10,000 small headers",
             req(b"/events?user=a", b"".join(b"X-H%d: v\r\n" % i for i in range(10000))), {431})
        case("10 KB request target", req(b"/events?user=a&x=" + b"t" * 10240), {414})
        case("100 KB query", req(b"/events?user=a&x=" + b"q" * 102400), {414})
        case("300 topics", req(b"/events?user=a&" + b"&".join(b"topic=t%d" % i
                                                              for i in range(300))), {400})
        case("junk bytes", bytes(random.Random(7).randrange(256) for _ in range(2048)),
             {400, None})
        hello = bytes.fromhex("16030100c4010000c00303") + bytes(range(32)) + \
            bytes.fromhex("000813021303130100ff010000") + b"\x00" * 150
        case("TLS ClientHello", hello, {400, None})
        case("NUL in target", b"GET /events?user=a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
             {400, None})
        case("NUL in header", req(b"/events?user=a", b"X-N: a\x00b\r\n"), {400, None})
        case("NUL everywhere", b"\x00" * 4096, {400, None})
        case("invalid UTF-8 topic (percent-encoded)", req(b"/events?user=a&topic=%FF%FE"),
             {400})
        case("invalid UTF-8 topic (raw bytes)", req(b"/events?user=a&topic=\xff\xfe"),
             {400, None})
        # invalid UTF-8 names together with an old (but well-formed) position: the resume
        # must still finish (history-truncated + position block), or the request be refused
        probe = SseClient(port, user="probe", timeout=3)
        probe.wait_for(lambda c: [b for b in c.blocks if b["id"]], 3, "position block")
        epoch = [b for b in probe.blocks if b["id"]][-1]["id"].split(".")[0]
        probe.close()
        old_pos = ("%s.0.1" % epoch).encode()
        for name, target in (("invalid UTF-8 topic + old Last-Event-ID",
                              b"/events?user=a&topic=%FF%FE"),
                             ("invalid UTF-8 user + old Last-Event-ID",
                              b"/events?user=%C3%28")):
            st, out, closed = raw_exchange(port, req(target, b"Last-Event-ID: " + old_pos +
                                                     b"\r\n"), timeout=1.5)
            resumed = st == 200 and b"\n\nid: " + epoch.encode() in out
            # 400 (invalid topic) or, for ?user= in auth.mode none where the user is the
            # credential, 401; a 200 must finish its resume.
            results.append((name, st if st != 200 else (200 if resumed else "200 but stuck: "
                                                           "no history-truncated/position"),
                            {400, 401, 200}, closed, out[:240]))
            self.assertTrue(gw.running())
        # Last-Event-ID junk: a stream that says unknown-position
        st, out, closed = case("invalid UTF-8 Last-Event-ID",
                               req(b"/events?user=lid", b"Last-Event-ID: \xff\xfe\xc3\x28\r\n"),
                               {200}, timeout=1.0)
        self.assertIn(b"event: history-truncated", out, out[:400])
        self.assertIn(b"unknown-position", out)
        st, out, closed = case("invalid UTF-8 ?lastEventId",
                               req(b"/events?user=lid2&lastEventId=%FF%FE"), {200}, timeout=1.0)
        self.assertIn(b"unknown-position", out, out[:400])
        # HTTP/1.0
        st, out, closed = case("HTTP/1.0 request",
                               b"GET /events?user=h10 HTTP/1.0\r\n\r\n", {200}, timeout=1.0)
        self.assertIn(b"text/event-stream", out)
        self.assertIn(b"retry: ", out)
        # pipelined second request after the GET: never a second response on the stream
        c = socket.create_connection((HOST, port), timeout=3)
        self.addCleanup(c.close)
        c.sendall(req(b"/events?user=pipe") + req(b"/events?user=other") +
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        pipe = b""
        t_end = time.monotonic() + 1.0
        publish_done = False
        while time.monotonic() < t_end + 1.0:
            c.settimeout(0.2)
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                chunk = None
            except OSError:
                break
            if chunk == b"":
                break
            if chunk:
                pipe += chunk
            if not publish_done and time.monotonic() > t_end - 0.7:
                publish_http(gw.admin_port, {"channel": "user:pipe", "event": "p",
                                             "data": "piped"})
                publish_http(gw.admin_port, {"channel": "user:other", "event": "o",
                                             "data": "other"})
                publish_done = True
        pipe_status = int(pipe.split(b" ", 2)[1]) if pipe.startswith(b"HTTP/") else None
        results.append(("pipelined GET+GET+GET", pipe_status, {200}, None, pipe[:160]))
        print("", flush=True)
        for name, status, expect, closed, out in results:
            self.report("junk", "%-40s -> %s (expected %s)%s" % (
                name, status, sorted(expect, key=str), "" if status in expect
                else "  MISMATCH: %r" % out))
        self.report("junk", "pipelined stream: %d bytes, 'HTTP/1.1' occurs %d times, got the "
                    "user:pipe event %s, got user:other's %s"
                    % (len(pipe), pipe.count(b"HTTP/1."), b"data: piped" in pipe,
                       b"data: other" in pipe))
        # the gateway still serves a normal stream and /healthz
        normal = SseClient(port, user="after", timeout=3)
        self.addCleanup(normal.close)
        publish_http(gw.admin_port, {"channel": "user:after", "event": "ok", "data": "fine"})
        normal.wait_for_events(1, timeout=3)
        m = gw.metrics()
        self.report("junk", "afterwards: stream 200 + event delivered, /healthz %s; rejected "
                    "by reason %s; closed by reason %s"
                    % (gw.healthz(), {l.get("reason"): v for l, v in
                                      m.series("ssegw_requests_rejected_total") if v},
                       {l.get("reason"): v for l, v in
                        m.series("ssegw_connections_closed_total") if v}))
        self.assertEqual(gw.healthz(), 200)
        self.assertEqual(pipe_status, 200)
        self.assertEqual(pipe.count(b"HTTP/1."), 1, "a second response on the stream: %r"
                         % pipe[:600])
        self.assertNotIn(b"data: other", pipe)
        self.assertIn(b"data: piped", pipe)
        mismatches = [(n, s, sorted(e, key=str), o) for n, s, e, _, o in results
                      if s not in e]
        self.assertEqual(mismatches, [], "unexpected answers (name, status, expected, first "
                         "bytes)")


# --------------------------------------------------------------------------------------------
# 5. Redis kill -9 and restart (AOF) under load

REDIS_CLIENTS = 50
REDIS_RATE = 200.0


class RedisKillTest(FaultCase):

    def test_redis_kill_and_restart_loses_nothing(self):
        rdir = os.path.join(self.tmp, "redis-aof")
        os.makedirs(rdir)
        redis = AofRedisServer(workdir=rdir)
        self.addCleanup(redis.kill)
        self._log_sources.append(("redis (AOF)", redis.log_tail))
        redis.start()
        gw = self.start_gateway(redis=redis, threads=2, log_level="info",
                                config={"redis": {"reconnect_min_ms": 100,
                                                  "reconnect_max_ms": 1000}})
        clients = []
        for i in range(REDIS_CLIENTS):
            clients.append(SseFleetClient(i, gw.port, "/events?user=r%d&topic=rt%d" % (i, i % 5),
                                          channels=("user:r%d" % i, "topic:rt%d" % (i % 5),
                                                    "broadcast")))
        got = {c.idx: [] for c in clients}

        def handler(c, wall, bid, ev, payload):
            if ev == b"history-truncated":
                got[c.idx].append(("truncated", payload))
                return
            got[c.idx].append(int(payload))

        fleet = SseFleet(clients, reconnect=True, handler=handler, name="redis-kill").start()
        self.addCleanup(fleet.shutdown)
        fleet.wait(lambda: all(c.positioned for c in clients), 15, "clients up")

        ok, doubt = [], []           # (global no, channel)
        failed = [0]
        stop = threading.Event()
        rnd = random.Random(5)
        phase = {"down": False}
        down_attempts = [0]

        def publisher():
            conn = None
            g = 0
            t0 = time.monotonic()
            while not stop.is_set():
                delay = t0 + g / REDIS_RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                r = rnd.random()
                ch = "broadcast" if r < 0.2 else ("topic:rt%d" % rnd.randrange(5) if r < 0.5
                                                   else "user:r%d" % rnd.randrange(REDIS_CLIENTS))
                if phase["down"]:
                    down_attempts[0] += 1
                try:
                    if conn is None:
                        conn = RespClient(redis.port, timeout=1.0)
                    reply = conn.call("FCALL", "sse_publish", "1", ch, str(g))
                    if isinstance(reply, bytes):
                        ok.append((g, ch))
                    else:
                        failed[0] += 1
                except RespError:
                    failed[0] += 1          # e.g. LOADING while the AOF is replayed
                except (OSError, ConnectionError):
                    if conn is not None:
                        doubt.append((g, ch))   # sent, no reply: may or may not have run
                        conn.close()
                        conn = None
                    else:
                        failed[0] += 1          # connection refused: nothing was sent
                g += 1
            if conn is not None:
                conn.close()

        ready = []
        def poll_ready():
            while not stop.is_set():
                ready.append((time.monotonic(), gw.readyz()))
                stop.wait(0.1)

        pub = threading.Thread(target=publisher, daemon=True)
        rp = threading.Thread(target=poll_ready, daemon=True)
        self.addCleanup(stop.set)
        pub.start()
        rp.start()
        time.sleep(2.5)
        failed_before = failed[0]
        t_kill = time.monotonic()
        phase["down"] = True
        redis.kill()
        time.sleep(3.0)
        redis.proc = None
        t_restart = time.monotonic()
        redis.start(timeout=15)
        t_redis_up = time.monotonic()
        phase["down"] = False
        wait_until(lambda: gw.readyz() == 200, 15, message=lambda: gw.log_tail(2000))
        t_gw_ready = time.monotonic()
        time.sleep(3.0)
        stop.set()
        pub.join(timeout=5)
        rp.join(timeout=5)

        okset = {g for g, _ in ok}
        doubtset = {g for g, _ in doubt}
        expected = {}
        for c in clients:
            expected[c.idx] = [g for g, ch in ok if ch in c.channels]

        try:
            fleet.wait(lambda: has_all(clients, got, expected), 20,
                       "every client has every acknowledged event")
        except AssertionError:
            pass
        fleet.shutdown()
        (lost, dups, disorder, foreign, truncated), examples = tally(clients, got, expected,
                                                                     doubtset)
        down = [s for t, s in ready if t_kill + 0.5 < t < t_restart]
        after = [s for t, s in ready if t > t_gw_ready]
        m = gw.metrics()
        self.report("redis-kill", "%d clients, FCALL sse_publish at %.0f/s: acknowledged %d, "
                    "failed %d (%d attempts while Redis was down), in doubt (sent, connection "
                    "died) %d" % (REDIS_CLIENTS, REDIS_RATE, len(ok), failed[0] - failed_before,
                                  down_attempts[0], len(doubt)))
        self.report("redis-kill", "outage: redis down %.2fs (kill -9 -> PING again), gateway "
                    "/readyz 200 again %.2fs after the kill; /readyz during outage %s"
                    % (t_redis_up - t_kill, t_gw_ready - t_kill, sorted(set(down))))
        self.report("redis-kill", "deliveries expected %d; events lost = %d, duplicates = %d, "
                    "out of order = %d, unexpected = %d, history-truncated = %d; client streams "
                    "ended %d; redis_reconnects_total %d, history_caught_up_events_total %d"
                    % (sum(len(v) for v in expected.values()), lost, dups, disorder, foreign,
                       truncated, sum(c.ends for c in clients),
                       m.get("ssegw_redis_reconnects_total"),
                       m.get("ssegw_history_caught_up_events_total")))
        if examples:
            self.report("redis-kill", "examples (client, missing, unexpected, connects, ends, "
                        "last sent id): %s\n    gateway log: %s" % (examples, log_lines(gw)))
        self.assertGreater(len(ok), 500)
        self.assertIn(503, down, "readyz did not turn 503 while Redis was down")
        self.assertTrue(after and all(s == 200 for s in after), after)
        self.assertEqual((lost, dups, disorder, foreign, truncated), (0, 0, 0, 0, 0))
        self.assertTrue(gw.running())


# --------------------------------------------------------------------------------------------
# 6. kill -9 one instance behind haproxy

KILL_CLIENTS = 150
KILL_RATE = 300.0
KILL_SECONDS = 10.0


class InstanceKillTest(FaultCase):

    def test_kill_one_gateway_behind_haproxy(self):
        topo = Topology(workdir=os.path.join(self.tmp, "topology"))
        self.addCleanup(topo.stop)
        self._log_sources.append(("topology logs", lambda: topo.logs(4000)))
        topo.start(timeout=60)
        lb = topo.lb_port
        clients = [SseFleetClient(i, lb, "/events?user=k%d&topic=kt%d" % (i, i % 5),
                                  channels=("user:k%d" % i, "topic:kt%d" % (i % 5)))
                   for i in range(KILL_CLIENTS)]
        got = {c.idx: [] for c in clients}

        def handler(c, wall, bid, ev, payload):
            if ev == b"history-truncated":
                got[c.idx].append(("truncated", payload))
            else:
                got[c.idx].append(int(payload))

        fleet = SseFleet(clients, reconnect=True, handler=handler, name="kill9").start(spread=1.0)
        self.addCleanup(fleet.shutdown)
        fleet.wait(lambda: all(c.positioned for c in clients), 20, "clients up")
        before = [topo.metrics(n).get("ssegw_connections") for n in (1, 2, 3)]

        ok, errors = [], []
        rnd = random.Random(6)
        stop = threading.Event()

        def publisher():
            with RespClient(topo.redis_port, timeout=10) as rc:
                g = 0
                t0 = time.monotonic()
                batch = 15
                while time.monotonic() - t0 < KILL_SECONDS:
                    delay = t0 + g / KILL_RATE - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    cmds = []
                    for _ in range(batch):
                        ch = ("topic:kt%d" % rnd.randrange(5) if rnd.random() < 0.3
                              else "user:k%d" % rnd.randrange(KILL_CLIENTS))
                        cmds.append((g, ch))
                        g += 1
                    replies = rc.pipeline([("FCALL", "sse_publish", "1", ch, str(n))
                                           for n, ch in cmds])
                    for (n, ch), rep in zip(cmds, replies):
                        (ok if isinstance(rep, bytes) else errors).append((n, ch, rep))

        pub = threading.Thread(target=publisher, daemon=True)
        pub.start()
        time.sleep(KILL_SECONDS * 0.35)
        t_kill = time.monotonic()
        topo.kill(1)
        pub.join(timeout=KILL_SECONDS + 10)
        expected = {c.idx: [n for n, ch, _ in ok if ch in c.channels] for c in clients}

        try:
            fleet.wait(lambda: has_all(clients, got, expected), 20,
                       "every client has every event")
        except AssertionError:
            pass
        after = [topo.metrics(n).get("ssegw_connections") for n in (2, 3)]
        fleet.shutdown()
        (lost, dups, disorder, foreign, truncated), examples = tally(clients, got, expected)
        moved = [c for c in clients if c.ends]
        rt = [x * 1000 for c in clients for x in c.reconnect_times]
        self.report("kill9", "%d clients through haproxy (gateways held %s); FCALL at %.0f/s "
                    "for %.0fs: %d events, %d errors; gw1 kill -9 at %.1fs"
                    % (KILL_CLIENTS, [int(x) for x in before], KILL_RATE, KILL_SECONDS, len(ok),
                       len(errors), t_kill - self.t0))
        self.report("kill9", "%d clients lost their stream and came back (lb 5xx %d, connect "
                    "errors %d); reconnect time (stream lost -> new 200, including the "
                    "advertised retry wait of %d ms) p50 %.0f ms p99 %.0f ms max %.0f ms; "
                    "gw2+gw3 now hold %s"
                    % (len(moved), sum(c.lb_errors for c in clients),
                       sum(c.conn_errors for c in clients),
                       min(c.retry_ms for c in clients), percentile(rt, 50), percentile(rt, 99),
                       max(rt or [0]), [int(x) for x in after]))
        self.report("kill9", "deliveries expected %d: lost %d, duplicates %d, out of order %d, "
                    "unexpected %d, history-truncated %d"
                    % (sum(len(v) for v in expected.values()), lost, dups, disorder, foreign,
                       truncated))
        if examples:
            self.report("kill9", "examples (client, missing, unexpected, connects, ends, sent "
                        "id): %s" % examples)
        self.assertEqual(errors[:3], [])
        self.assertGreater(len(moved), KILL_CLIENTS / 6, "the killed gateway held clients")
        self.assertEqual([c.fatal for c in clients if c.fatal], [])
        self.assertEqual((lost, dups, disorder, foreign, truncated), (0, 0, 0, 0, 0))
        self.assertEqual(sum(after), KILL_CLIENTS)


# --------------------------------------------------------------------------------------------
# 7. randomized isolation

ISO_USERS = 500
ISO_EVENTS = 100000
ISO_BATCH = 1000


class IsolationTest(FaultCase):

    def test_random_user_deliveries_are_isolated(self):
        redis = self.start_redis()
        gws = [self.start_gateway(redis=redis, threads=2, log_level="info") for _ in range(2)]
        clients = [SseFleetClient(i, gws[i % 2].port, "/events?user=u%d" % i)
                   for i in range(ISO_USERS)]
        got = {c.idx: [] for c in clients}
        foreign = []

        def handler(c, wall, bid, ev, payload):
            uid, _, n = payload.partition(b":")
            if uid != b"u%d" % c.idx:
                foreign.append((c.idx, payload))
                return
            got[c.idx].append(int(n))

        fleet = SseFleet(clients, reconnect=False, handler=handler, name="iso").start(spread=1.0)
        self.addCleanup(fleet.shutdown)
        fleet.wait(lambda: all(c.positioned for c in clients), 20, "clients up")
        chans = ["sse:user:u%d" % i for i in range(ISO_USERS)]
        wait_until(lambda: all(v == 1 for v in redis.numsub(*chans).values()), 10)

        rnd = random.Random(77)
        counts = [0] * ISO_USERS
        t0 = time.monotonic()
        n_fcall = 0
        with RespClient(redis.port, timeout=30) as rc:
            for b in range(ISO_EVENTS // ISO_BATCH):
                cmds = []
                for _ in range(ISO_BATCH):
                    u = rnd.randrange(ISO_USERS)
                    payload = '{"event":"m","data":"u%d:%d"}' % (u, counts[u])
                    counts[u] += 1
                    if rnd.random() < 0.1:
                        cmds.append(("FCALL", "sse_publish", "1", "user:u%d" % u, payload))
                        n_fcall += 1
                    else:
                        cmds.append(("PUBLISH", "sse:user:u%d" % u, payload))
                replies = rc.pipeline(cmds)
                bad = [r for r in replies if isinstance(r, RespError)]
                self.assertEqual(bad[:3], [])
                time.sleep(0.02)
        pub_s = time.monotonic() - t0
        try:
            fleet.wait(lambda: all(len(got[c.idx]) >= counts[c.idx] for c in clients)
                       or foreign, 30, "all deliveries")
        except AssertionError:
            pass
        time.sleep(0.3)
        fleet.shutdown()
        missing = sum(max(0, counts[c.idx] - len(set(got[c.idx]))) for c in clients)
        wrong_order = [c.idx for c in clients if got[c.idx] != list(range(counts[c.idx]))]
        delivered = sum(len(v) for v in got.values())
        self.report("isolation", "%d users x 1 stream over 2 gateways; %d events (%d PUBLISH, "
                    "%d FCALL) to random user channels in %.1fs; delivered %d, foreign %d, "
                    "missing %d, clients with a wrong sequence %d"
                    % (ISO_USERS, ISO_EVENTS, ISO_EVENTS - n_fcall, n_fcall, pub_s, delivered,
                       len(foreign), missing, len(wrong_order)))
        self.assertEqual(foreign[:5], [])
        self.assertEqual(missing, 0)
        self.assertEqual(wrong_order[:5], [])
        self.assertEqual(delivered, ISO_EVENTS)

    def test_jwt_user_cannot_be_overridden_by_query(self):
        secret = "fault-test-secret-0123456789abcdefghij"
        gw = self.start_gateway(threads=2, log_level="info",
                                config={"auth": {"mode": "jwt", "jwt": {"secret": secret}}})
        tok = make_jwt({"sub": "alice", "exp": int(time.time()) + 600}, secret)
        seen = {}
        for how, kw in (("?token=", {"query": [("user", "bob"), ("token", tok)]}),
                        ("Authorization", {"query": [("user", "bob")],
                                           "headers": {"Authorization": "Bearer " + tok}}),
                        ("cookie", {"query": [("user", "bob")],
                                    "headers": {"Cookie": "sse_token=" + tok}})):
            c = SseClient(gw.port, timeout=3, **kw)
            self.addCleanup(c.close)
            seen[how] = c
        for how, c in seen.items():
            self.assertEqual(c.status, 200, "%s: %s" % (how, c.summary()))
        publish_http(gw.admin_port, {"channel": "user:bob", "event": "secret", "data": "bob"})
        publish_http(gw.admin_port, {"channel": "user:alice", "event": "mine", "data": "alice"})
        for c in seen.values():
            c.wait_for_events(1, timeout=3, event="mine")
        time.sleep(0.3)
        names = {how: c.event_names() for how, c in seen.items()}
        self.report("isolation", "JWT sub=alice asking ?user=bob (token via query, header, "
                    "cookie): events received %s" % names)
        for how, c in seen.items():
            self.assertNotIn("secret", c.event_names(), how)
        # a bare ?user= without a token is refused in JWT mode
        lone = SseClient(gw.port, user="bob", timeout=3)
        self.addCleanup(lone.close)
        self.assertEqual(lone.status, 401)


if __name__ == "__main__":
    unittest.main()

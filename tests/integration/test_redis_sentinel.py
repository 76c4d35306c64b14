"""Sentinel mode against real servers: a redis-server primary and replica, three
`redis-server --sentinel` (quorum 2, down-after 1 s), two gateways behind a real haproxy
round robin, clients on both, and a publisher issuing FCALL sse_publish at ~100/s that asks the
sentinels where the primary is and retries through failovers, as a backend's Sentinel-aware
client does.

  SentinelFailoverTest   a planned SENTINEL FAILOVER (publisher waits for replication: WAIT 1),
                         then kill -9 of the new primary (plain FCALL): every acknowledged event
                         reaches each of its clients exactly once and in order; a client
                         resuming from before both failovers gets every event that still exists,
                         and history-truncated first if any acknowledged one is gone; the time
                         from kill -9 to the first event delivered from the promoted primary
  SentinelTlsTest        rediss:// sentinels and data nodes, through a kill -9 of the primary
  SentinelDiscoveryTest  the first sentinel in the list is down: the next one is asked; a
                         master name no sentinel monitors: 503, a clear log line, no crash"""

import os
import subprocess
import threading
import time
import unittest

from ssegw_testlib import (HOST, FailureAwareMixin, GatewayTestCase, ReconnectingSseClient,
                           RedisSentinel, RespClient, RespError, free_port, make_test_pki,
                           is_position_block, kill_process_group, wait_until, _s)

MASTER = "mymaster"
CLIENTS = 10
RATE = 100.0


def gateway_config(master=MASTER):
    return {"redis": {"mode": "sentinel", "sentinel": {"master_name": master},
                      "reconnect_min_ms": 50, "reconnect_max_ms": 500},
            "sse": {"heartbeat_seconds": 1, "retry_ms": 500}}


class SentinelPublisher(threading.Thread):
    """FCALL sse_publish at `rate`/s, payload = the event's number n, to `channels` in turn.
    Finds the primary through the sentinels; on any error (connection lost, READONLY, not
    replicated) it drops its link, asks again and retries the same event. With wait_replica an
    event counts as acknowledged only once `WAIT 1 100` says a replica has it; one that only the
    primary has is recorded as unreplicated (published, maybe lost in a failover) and not
    retried."""

    def __init__(self, sentinels, channels, rate=RATE):
        super().__init__(daemon=True, name="sentinel-publisher")
        self.sentinels = sentinels
        self.channels = channels
        self.rate = rate
        self.wait_replica = True
        self.acked = []          # (n, channel, position, primary port, monotonic time)
        self.retried = set()     # n with an attempt whose outcome the publisher never learnt
        self.unreplicated = []   # (n, channel, position, primary port): WAIT said 0
        self.errors = []
        self.gave_up = []
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._conn = None
        self.port = None

    def primary_port(self):
        for s in self.sentinels:
            try:
                return s.primary()[1]
            except (OSError, RespError, ValueError):
                continue
        raise OSError("no sentinel answered")

    def acked_by(self, port):
        with self._lock:
            return [a for a in self.acked if a[3] == port]

    def snapshot(self):
        with self._lock:
            return list(self.acked)

    def _attempt(self, n, ch):
        if self._conn is None:
            self.port = self.primary_port()
            self._conn = RespClient(self.port, timeout=2)
        pos = _s(self._conn.call("FCALL", "sse_publish", "1", ch, str(n)))
        if self.wait_replica and self._conn.call("WAIT", "1", "100") < 1:
            with self._lock:
                self.unreplicated.append((n, ch, pos, self.port))
            return
        with self._lock:
            self.acked.append((n, ch, pos, self.port, time.monotonic()))

    def run(self):
        n = 0
        t0 = time.monotonic()
        while not self._halt.is_set() and time.monotonic() - t0 < 180:
            n += 1
            ch = self.channels[n % len(self.channels)]
            deadline = time.monotonic() + 20
            while not self._halt.is_set():
                try:
                    self._attempt(n, ch)
                    break
                except (OSError, RespError, ValueError) as e:
                    self.retried.add(n)
                    if len(self.errors) < 1000:
                        self.errors.append(repr(e))
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if time.monotonic() > deadline:
                        self.gave_up.append(n)
                        break
                    self._halt.wait(0.05)
            delay = t0 + n / self.rate - time.monotonic()
            if delay > 0:
                self._halt.wait(delay)
        if self._conn is not None:
            self._conn.close()

    def stop(self):
        self._halt.set()
        self.join(timeout=30)


class HaproxyRoundRobin:
    """haproxy round robin over the gateways, taking out one whose /readyz fails."""

    def __init__(self, workdir, gateways):
        self.port = free_port()
        self.cfg = os.path.join(workdir, "haproxy-%d.cfg" % self.port)
        servers = "".join("  server g%d %s:%d check port %d inter 500 fall 2 rise 1\n"
                          % (i, HOST, g.port, g.admin_port) for i, g in enumerate(gateways))
        with open(self.cfg, "w") as f:
            f.write("global\n  maxconn 2000\ndefaults\n  mode http\n  timeout connect 2s\n"
                    "  timeout client 60s\n  timeout server 60s\n  timeout tunnel 1h\n"
                    "frontend fe\n  bind %s:%d\n  default_backend gws\n"
                    "backend gws\n  balance roundrobin\n  option httpchk GET /readyz\n%s"
                    % (HOST, self.port, servers))
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def kill(self):
        kill_process_group(self.proc)


class SentinelCase(FailureAwareMixin, GatewayTestCase):

    def start_sentinel(self, primary_port, **kw):
        s = RedisSentinel(primary_port, workdir=self.tmp, **kw)
        self.addCleanup(s.kill)
        s.start()
        self._log_sources.append(("sentinel :%d" % s.port, s.log_tail))
        return s

    def start_replicated_set(self, tls=None):
        self.primary = self.start_redis(tls=tls)
        replica_args = ("--replicaof", HOST, str(self.primary.port))
        if tls:
            replica_args += ("--tls-replication", "yes")
        self.replica = self.start_redis(tls=tls, extra_args=replica_args)
        wait_until(lambda: "master_link_status:up" in self.replica.cli("INFO", "replication"),
                   15, message="replica never synced")
        self.sentinels = [self.start_sentinel(self.primary.port, tls=tls) for _ in range(3)]
        self.wait_sentinels_know(self.primary.port, replicas=1)

    def wait_sentinels_know(self, primary_port, replicas):
        def settled():
            return all(s.primary()[1] == primary_port and s.knows(replicas, 2)
                       for s in self.sentinels)
        wait_until(settled, 30, interval=0.2, message="sentinels never settled")

    def sentinel_url(self, sentinels=None, scheme="redis"):
        return ",".join("%s://%s:%d" % (scheme, HOST, s.port)
                        for s in sentinels or self.sentinels)

    def first_data_after(self, client, numbers, t_after):
        """Wall time of the first event in `numbers` the client got after t_after, or None."""
        for e in client.snapshot():
            if e["event"] == "message" and int(e["data"]) in numbers and e["t"] >= t_after:
                return e["t"]
        return None


class SentinelFailoverTest(SentinelCase):

    def test_planned_failover_then_kill_under_load(self):
        self.start_replicated_set()
        url = self.sentinel_url()
        gws = [self.start_gateway(gateway_config(), redis=url, threads=2) for _ in range(2)]
        lb = HaproxyRoundRobin(self.tmp, gws)
        self.addCleanup(lb.kill)
        wait_until(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                           "http://%s:%d/readyz" % (HOST, gws[0].admin_port)],
                                          capture_output=True).stdout == b"200", 10)
        users = ["s%d" % i for i in range(CLIENTS)]
        clients = []
        for u in users:
            c = ReconnectingSseClient(lb.port, user=u, name=u).start()
            self.addCleanup(c.stop)
            clients.append(c)
        for c in clients:
            c.wait_for(lambda cl: cl.connected, 15, "connected through haproxy")
        held = [g.metric("ssegw_connections") for g in gws]
        self.assertEqual(sum(held), CLIENTS)
        self.assertTrue(all(held), "clients on both gateways: %s" % held)
        wait_until(lambda: all(v >= 1 for v in self.primary.numsub(*("sse:user:" + u for u in users)).values()), 10)

        pub = SentinelPublisher(self.sentinels, ["user:" + u for u in users])
        pub.start()
        self.addCleanup(pub.stop)
        wait_until(lambda: len(pub.snapshot()) >= 200, 15, message="publishing never started")
        resume_from = {ch: pos for n, ch, pos, _, _ in pub.snapshot()[:CLIENTS]}

        # 1. A planned failover: every event a replica acknowledged survives it.
        old, new = self.primary, self.replica
        t_planned = time.monotonic()
        self.sentinels[0].cli("SENTINEL", "FAILOVER", MASTER)
        wait_until(lambda: all(s.primary()[1] == new.port for s in self.sentinels), 20,
                   interval=0.1, message="planned failover never finished")
        wait_until(lambda: len(pub.acked_by(new.port)) >= 200, 20,
                   message="no events acknowledged by the new primary")
        self.wait_sentinels_know(new.port, replicas=1)
        wait_until(lambda: "master_link_status:up" in old.cli("INFO", "replication"), 20,
                   message="the old primary never became a synced replica")
        planned_switch = time.monotonic() - t_planned

        # 2. kill -9 of the primary: plain FCALL now (what most publishers do).
        pub.wait_replica = False
        wait_until(lambda: len(pub.acked_by(new.port)) >= 400, 20)
        before_kill = len(pub.snapshot())
        t_kill_wall, t_kill = time.time(), time.monotonic()
        new.kill()
        wait_until(lambda: all(s.primary()[1] == old.port for s in self.sentinels), 30,
                   interval=0.1, message="sentinels never promoted the replica")
        t_promoted = time.monotonic() - t_kill
        wait_until(lambda: len(pub.acked_by(old.port)) - before_kill >= 300, 30,
                   message="no events acknowledged after the kill")
        pub.stop()
        acked = pub.snapshot()
        self.assertEqual(pub.gave_up, [])

        unreplicated = {u[0] for u in pub.unreplicated}
        by_channel = {}
        for n, ch, pos, port, t in acked:
            by_channel.setdefault(ch, []).append(n)
        after_kill = {n for n, ch, pos, port, t in acked if port == old.port and t > t_kill}

        def has_all(c):
            got = {int(e["data"]) for e in c.events if e["event"] == "message"}
            return all(n in got for n in by_channel["user:" + c.name])

        for c in clients:
            c.wait_for(has_all, 20, "every acknowledged event")

        # Each client: every acknowledged event of its channel, in order, once (a number the
        # publisher retried may show twice: its first attempt was published, unacknowledged).
        dups = 0
        for c in clients:
            got = [int(e["data"]) for e in c.snapshot() if e["event"] == "message"]
            self.assertEqual([e for e in c.snapshot() if e["event"] != "message"], [])
            want = by_channel["user:" + c.name]
            seen = set()
            once = []
            for n in got:
                if n in seen:
                    self.assertIn(n, pub.retried, "%s got %d twice" % (c.name, n))
                    dups += 1
                    continue
                seen.add(n)
                once.append(n)
            self.assertEqual([n for n in once if n in set(want)], want, c.name)
            extra = set(once) - set(want)
            self.assertEqual(extra - unreplicated - pub.retried, set(),
                             "%s got events nobody published to it" % c.name)
            self.assertEqual(c.ends, 0, "streams never dropped: the gateways stayed up")

        first = [self.first_data_after(c, after_kill, t_kill_wall) for c in clients]
        first = [t for t in first if t is not None]
        self.assertTrue(first)
        kill_to_first_ms = (min(first) - t_kill_wall) * 1000

        # A client resuming from before both failovers: everything that still exists, and
        # history-truncated first if an acknowledged event is gone. A failover's loss is known as
        # a stretch of positions, not per channel, so the notice also goes to streams whose
        # channels lost nothing, when any channel lost an event a stream could have seen (an
        # acknowledged one, or an unacknowledged attempt the old primary published): never
        # silent, sometimes cautious.
        # By number and sequence (a replay names positions in the current epoch, with the
        # sequence they had). A retried number whose first attempt was delivered live and then
        # lost shows as a number delivered twice (its retry may take the lost one's sequence).
        def seq_of(e):
            return (int(e["data"]), e["id"].split(".")[1])
        live_any = {seq_of(e) for c in clients for e in c.snapshot() if e["event"] == "message"}
        replayed_any = set()
        truncated = []
        for ch, pos in sorted(resume_from.items()):
            user = ch.split(":", 1)[1]
            start = next(a[0] for a in acked if a[2] == pos)
            want = [n for n in by_channel[ch] if n > start]
            r = self.sse(gws[0].port, user=user, last_event_id=pos)
            r.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 10, "caught up")
            names = [e["event"] for e in r.snapshot()]
            got = [int(e["data"]) for e in r.snapshot() if e["event"] == "message"]
            replayed_any.update(seq_of(e) for e in r.snapshot() if e["event"] == "message")
            missing = [n for n in want if n not in got]
            if missing:
                self.assertEqual(names[0], "history-truncated",
                                 "%s resumed from %s: %d acknowledged events missing, not "
                                 "announced (first %s)" % (user, pos, len(missing), missing[:5]))
            if names and names[0] == "history-truncated":
                truncated.append(user)
            self.assertLessEqual(names.count("history-truncated"), 1, user)
            twice = sorted({n for n in got if got.count(n) > 1 and n not in pub.retried})
            self.assertEqual(twice, [], "%s: replayed twice" % user)
            r.close()
        first_start = max(next(a[0] for a in acked if a[2] == pos) for pos in resume_from.values())
        gone = sorted(ev for ev in live_any if ev[0] > first_start and ev not in replayed_any)
        if truncated:
            self.assertTrue(gone or dups, "history-truncated for %s, but no event any stream "
                            "could have seen is gone" % truncated)
        self.assertLess(len(gone), 50, "only a failover's last moments are lost: %s" % gone[:10])
        truncated = len(truncated)

        failovers = [g.metric("ssegw_redis_failovers_total") for g in gws]
        self.assertEqual(failovers, [2, 2])
        for g in gws:
            self.assertEqual(g.readyz(), 200)
        print("\nsentinel: %d events acknowledged (%d after the kill), %d publisher retries, "
              "%d duplicate deliveries of retried events, %d events no replica had yet (WAIT 1 "
              "said 0: the new primary alone until the old one rejoined); planned failover settled in %.1f s; "
              "kill -9 -> sentinels named the new primary %.0f ms, -> first event delivered "
              "from it %.0f ms; resumes across both: %d of %d announced history-truncated; "
              "events delivered live then lost by a failover %d; gateway failovers seen %s"
              % (len(acked), len(after_kill), len(pub.retried), dups, len(unreplicated),
                 planned_switch,
                 t_promoted * 1000, kill_to_first_ms, truncated, len(resume_from), len(gone),
                 failovers))


class SentinelDiscoveryTest(SentinelCase):

    def test_first_sentinel_down_next_one_asked(self):
        self.start_replicated_set()
        dead = free_port()  # nothing listens there
        url = "redis://%s:%d,%s" % (HOST, dead, self.sentinel_url())
        gw = self.start_gateway(gateway_config(), redis=url, threads=1)
        self.assertEqual(gw.metric("ssegw_redis_info", address="%s:%d" % (HOST,
                                                                        self.primary.port),
                                   role="master"), 1)
        with self.sse(gw.port, user=7) as c:
            c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5, "position")
            self.primary.cli("FCALL", "sse_publish", "1", "user:7", "hello")
            c.wait_for_event(lambda e: e["data"] == "hello", 5, "event through the primary")
        self.assertGreaterEqual(gw.metric("ssegw_redis_sentinel_changes_total"), 1)
        self.assertIn("is not answering", gw.log_text())

    def test_unknown_master_name_is_a_clear_error(self):
        self.start_replicated_set()
        gw = self.start_gateway(gateway_config("nosuchmaster"), redis=self.sentinel_url(),
                                threads=1, wait="healthy")
        wait_until(lambda: "monitors no primary named \"nosuchmaster\"" in gw.log_text(), 10,
                   message=lambda: gw.log_tail())
        self.assertEqual(gw.readyz(), 503)
        self.assertTrue(gw.running())
        self.assertEqual(gw.metric("ssegw_redis_connected"), 0)


class SentinelTlsTest(SentinelCase):
    """rediss:// sentinels: TLS to the sentinels and to the data nodes they name (an IP address,
    checked against the certificate's IP entry), through a kill -9 of the primary."""

    def test_follows_a_failover_over_tls(self):
        pki = make_test_pki(os.path.join(self.tmp, "pki"))
        self.start_replicated_set(tls=pki)
        cfg = gateway_config()
        cfg["redis"]["tls"] = {"ca_file": os.path.join(pki, "ca.crt")}
        gw = self.start_gateway(cfg, redis=self.sentinel_url(scheme="rediss"), threads=2)
        c = ReconnectingSseClient(gw.port, user=5, name="tls").start()
        self.addCleanup(c.stop)
        c.wait_for(lambda cl: cl.connected, 10, "connected")
        wait_until(lambda: self.primary.numsub("sse:user:5")["sse:user:5"] == 1, 10)
        self.primary.cli("FCALL", "sse_publish", "1", "user:5", "before")
        c.wait_for(lambda cl: [e["data"] for e in cl.events] == ["before"], 5, "first event")

        self.primary.kill()
        wait_until(lambda: all(s.primary()[1] == self.replica.port for s in self.sentinels), 30,
                   interval=0.1, message="sentinels never promoted the replica")
        wait_until(lambda: self.replica.numsub("sse:user:5")["sse:user:5"] == 1, 10,
                   message=lambda: gw.log_tail())
        self.replica.cli("FCALL", "sse_publish", "1", "user:5", "after")
        c.wait_for(lambda cl: [e["data"] for e in cl.events] == ["before", "after"], 10,
                   "the event from the promoted primary")
        self.assertEqual(c.ends, 0)
        self.assertEqual(gw.metric("ssegw_redis_failovers_total"), 1)
        self.assertEqual(gw.metric("ssegw_redis_tls_handshake_failures_total"), 0)
        self.assertEqual(gw.metric("ssegw_redis_info", address="%s:%d" % (HOST,
                                                                        self.replica.port)), 1)


if __name__ == "__main__":
    unittest.main()

"""End to end through scripts/topology: redis-server + 3 gateways + haproxy (round-robin, no
stickiness) on loopback.

300 EventSource-like clients (100 users x 3 connections, each also on topic t<user%5>) connect
through haproxy; 1,000 events are PUBLISHed to random user channels, topic channels and the
broadcast channel; every connection must receive exactly the events addressed to it, in publish
order, once. Then one gateway is killed with SIGKILL: its clients reconnect through haproxy and
every event published after they are all back is delivered exactly once again.

Prints publish->receive latency (p50/p99) and failover figures to stdout."""

import json
import os
import random
import time
import unittest

from ssegw_testlib import (GatewayTestCase, ReconnectingSseClient, Topology, percentile,
                           wait_until)

USERS = 100
PER_USER = 3
TOPICS = 5
EVENTS = int(os.environ.get("SSEGW_E2E_EVENTS", "1000"))


def topic_of(user):
    return "t%d" % (user % TOPICS)


class TopologyTest(GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.topo = Topology(workdir=os.path.join(self.tmp, "topology"))
        self.addCleanup(self.topo.stop)
        self._log_sources.append(("topology logs", lambda: self.topo.logs(6000)))
        self.topo.start(timeout=120)
        self.redis = self.topo.redis(timeout=30)
        self.addCleanup(self.redis.close)
        self.clients = []
        self.addCleanup(self._stop_clients)

    def _stop_clients(self):
        for c in self.clients:
            c._stop.set()
        for c in self.clients:
            c.stop()

    # ------------------------------------------------------------------ helpers
    def publish(self, channel, payload):
        return self.redis.call("PUBLISH", "sse:" + channel, json.dumps(payload,
                                                                       separators=(",", ":")))

    def connection_counts(self, alive=(1, 2, 3)):
        return {n: self.topo.metrics(n).get("ssegw_connections") for n in alive}

    def warm_up(self, tag, timeout=30):
        """Publish marker events on every user/topic channel and broadcast until every client
        has seen its markers: proves every needed subscription is live on every instance
        (independent of how the gateway sequences SUBSCRIBE and the response)."""
        by_user = {}
        by_topic = {}
        for c in self.clients:
            by_user.setdefault(c.user, []).append(c)
            by_topic.setdefault(c.topics[0], []).append(c)

        def seen(c, kind):
            for e in c.snapshot():
                if e["event"] == "w":
                    d = json.loads(e["data"])
                    if d["tag"] == tag and d["kind"] == kind:
                        return True
            return False

        pending_users = set(by_user)
        pending_topics = set(by_topic)
        pending_bc = True
        deadline = time.monotonic() + timeout
        while pending_users or pending_topics or pending_bc:
            if time.monotonic() > deadline:
                self.fail("warm-up %s: users %s topics %s broadcast %s never confirmed"
                          % (tag, sorted(pending_users)[:10], sorted(pending_topics), pending_bc))
            for u in pending_users:
                self.publish("user:%d" % u, {"event": "w", "data": {"tag": tag, "kind": "user"}})
            for t in pending_topics:
                self.publish("topic:" + t, {"event": "w", "data": {"tag": tag, "kind": "topic"}})
            if pending_bc:
                self.publish("broadcast", {"event": "w", "data": {"tag": tag, "kind": "bc"}})
            time.sleep(0.3)
            pending_users = {u for u in pending_users
                             if not all(seen(c, "user") for c in by_user[u])}
            pending_topics = {t for t in pending_topics
                              if not all(seen(c, "topic") for c in by_topic[t])}
            pending_bc = not all(seen(c, "bc") for c in self.clients)

    def publish_phase(self, phase, seed):
        """Publish EVENTS events on a random mix of channels; returns the channel plan."""
        rng = random.Random(seed)
        plan = []
        for _ in range(EVENTS):
            r = rng.random()
            if r < 0.5:
                plan.append("user:%d" % rng.randint(1, USERS))
            elif r < 0.8:
                plan.append("topic:t%d" % rng.randrange(TOPICS))
            else:
                plan.append("broadcast")
        start = time.monotonic()
        for seq, ch in enumerate(plan):
            self.publish(ch, {"event": "m", "data": {"phase": phase, "seq": seq, "ch": ch,
                                                     "ts": time.time()}})
            if seq % 20 == 19:
                time.sleep(0.005)  # ~ a few thousand events/s: measure latency, not backlog
        elapsed = time.monotonic() - start
        return plan, elapsed

    def verify_phase(self, phase, plan, timeout=90):
        expected = {}
        for c in self.clients:
            mine = {"user:%d" % c.user, "topic:" + c.topics[0], "broadcast"}
            expected[c.name] = [seq for seq, ch in enumerate(plan) if ch in mine]

        def received(c):
            out = []
            for e in c.snapshot():
                if e["event"] == "m":
                    d = json.loads(e["data"])
                    if d["phase"] == phase:
                        out.append((d["seq"], e["t"] - d["ts"], d["ch"], e.get("conn")))
            return out

        # everything addressed has arrived (or the deadline passed) ...
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(received(c)) >= len(expected[c.name]) for c in self.clients):
                break
            time.sleep(0.5)
        # ... and a trailing broadcast marker proves nothing else was still in flight
        self.publish("broadcast", {"event": "end", "data": {"phase": phase}})
        for c in self.clients:
            c.wait_for(lambda cl: any(e["event"] == "end" and json.loads(e["data"])["phase"]
                                      == phase for e in cl.events[-50:]), 30, "end marker")
        failures = []
        latencies = []
        for c in self.clients:
            got = received(c)
            seqs = [g[0] for g in got]
            latencies.extend(g[1] for g in got)
            if seqs != expected[c.name]:
                exp = expected[c.name]
                missing = sorted(set(exp) - set(seqs))
                extra = sorted(set(seqs) - set(exp))
                dups = len(seqs) - len(set(seqs))
                foreign = [g for g in got if g[0] in extra][:3]
                failures.append("%s: expected %d got %d; missing %s extra %s (e.g. %s) dups %d "
                                "in-order %s" % (c.name, len(exp), len(seqs), missing[:8],
                                                 extra[:8], foreign, dups,
                                                 seqs == sorted(seqs)))
        if failures:
            self.fail("phase %d: %d of %d connections got a wrong event list:\n  %s"
                      % (phase, len(failures), len(self.clients), "\n  ".join(failures[:15])))
        return latencies, sum(len(v) for v in expected.values())

    @staticmethod
    def report(title, latencies, frames, publish_s):
        ms = [x * 1000 for x in latencies]
        print("\n[e2e] %s: %d events published in %.2fs, %d frames received; latency "
              "publish->receive p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (title, EVENTS, publish_s, frames, percentile(ms, 50), percentile(ms, 99),
                 max(ms) if ms else float("nan")), flush=True)

    # ------------------------------------------------------------------ the test
    def test_fanout_ordering_and_failover(self):
        lb = self.topo.lb_port
        # 1. 300 connections through haproxy, opened one after another (round robin spreads
        #    the three connections of each user over the three instances)
        t0 = time.monotonic()
        for u in range(1, USERS + 1):
            for k in range(PER_USER):
                c = ReconnectingSseClient(lb, user=u, topics=[topic_of(u)],
                                          name="u%d.%d" % (u, k), max_retry_ms=2000)
                self.clients.append(c)
                c.start()
                c.wait_for(lambda cl: cl.connects >= 1, 10, "first connection")
        for c in self.clients:
            self.assertIsNone(c.fatal, "%s refused with %s" % (c.name, c.fatal))
        counts = wait_until(lambda: (lambda d: d if sum(d.values()) == len(self.clients) else
                                     None)(self.connection_counts()), 15,
                            message=lambda: "gauge totals %s" % self.connection_counts())
        print("\n[e2e] %d connections open in %.2fs; per instance %s"
              % (len(self.clients), time.monotonic() - t0, counts), flush=True)
        self.assertGreaterEqual(len([n for n, v in counts.items() if v > 0]), 2,
                                "round robin must use several instances: %s" % counts)

        # per-user spread: in per-channel mode, NUMSUB sse:user:<u> = instances holding u
        self.warm_up("w1")
        flat = self.redis.call("PUBSUB", "NUMSUB", *["sse:user:%d" % u
                                                      for u in range(1, USERS + 1)])
        numsub = [int(flat[i + 1]) for i in range(0, len(flat), 2)]
        spread = {k: numsub.count(k) for k in sorted(set(numsub))}
        print("[e2e] users by number of instances holding them: %s" % spread, flush=True)
        self.assertGreaterEqual(sum(1 for n in numsub if n >= 2), USERS * 9 // 10,
                                "the connections of a user should land on several instances: "
                                "%s" % spread)

        # 2. 1,000 events, exact per-connection delivery, in order, once
        plan, pub_s = self.publish_phase(1, seed=1)
        lat, frames = self.verify_phase(1, plan)
        self.report("phase 1 (3 instances)", lat, frames, pub_s)

        # 3. kill -9 one instance; its clients reconnect through haproxy
        victim = 2
        on_victim = int(counts[victim])
        ends0 = {c.name: c.ends for c in self.clients}
        t_kill = time.monotonic()
        self.topo.kill(victim)
        survivors = [n for n in (1, 2, 3) if n != victim]

        def all_back():
            dropped = [c for c in self.clients if c.ends > ends0[c.name]]
            if len(dropped) < on_victim:
                return None
            if not all(c.connected for c in self.clients):
                return None
            return dropped
        dropped = wait_until(all_back, 45, interval=0.1, message=lambda: "dropped %d of %d, "
                             "connected %d of %d" % (
                                 len([c for c in self.clients if c.ends > ends0[c.name]]),
                                 on_victim, sum(c.connected for c in self.clients),
                                 len(self.clients)))
        t_back = time.monotonic() - t_kill
        wait_until(lambda: sum(self.connection_counts(survivors).values()) == len(self.clients),
                   15, message=lambda: "survivor gauges %s" % self.connection_counts(survivors))
        for c in self.clients:
            self.assertIsNone(c.fatal, "%s refused with %s" % (c.name, c.fatal))
        lb_errors = sum(c.lb_errors for c in self.clients)
        conn_errors = sum(c.connect_errors for c in self.clients)
        print("[e2e] killed gw%d holding %d connections: %d streams ended, all %d connected "
              "again after %.2fs (lb 5xx answers %d, connect errors %d); survivors %s"
              % (victim, on_victim, len(dropped), len(self.clients), t_back, lb_errors,
                 conn_errors, self.connection_counts(survivors)), flush=True)
        self.assertEqual(len(dropped), on_victim,
                         "only the killed instance's clients may lose their stream")

        # 4. events published after everyone is back: all delivered, exactly once
        self.warm_up("w2")
        plan2, pub_s2 = self.publish_phase(2, seed=2)
        lat2, frames2 = self.verify_phase(2, plan2)
        self.report("phase 2 (after failover, 2 instances)", lat2, frames2, pub_s2)
        for c in dropped:
            for e in c.snapshot():
                if e["event"] == "m" and json.loads(e["data"])["phase"] == 2:
                    self.assertGreaterEqual(e["conn"], 2)


if __name__ == "__main__":
    unittest.main()

"""Integration tests against a real redis-server: per-channel subscriptions follow the live
sessions, PUBLISH fan-out, pattern mode, Redis outages and junk payloads."""

import json
import os
import unittest

from ssegw_testlib import GatewayTestCase, is_position_block, wait_until

HEARTBEAT = 1


class RedisTest(GatewayTestCase):
    MODE = "per-channel"

    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.gw = self.start_gateway(self.config(), redis=self.redis, threads=2)

    def config(self):
        return {"sse": {"heartbeat_seconds": HEARTBEAT, "retry_ms": 1000,
                        "max_event_bytes": 65536},
                "redis": {"subscribe_mode": self.MODE,
                          "reconnect_min_ms": 100, "reconnect_max_ms": 500}}

    def connect(self, user=42, topics=()):
        c = self.sse(self.gw.port, user=user, topics=topics)
        self.assertEqual(c.status, 200, "status %s body %r" % (c.status, c.body))
        c.wait_for_raw(lambda raw: b"\n\n" in raw, 5, "handshake block")
        return c

    def wait_subscribed(self, *channels, timeout=5):
        wait_until(lambda: set(channels) <= self.redis.channels(), timeout,
                   message=lambda: "want %s, PUBSUB CHANNELS sse:* = %s"
                   % (sorted(channels), sorted(self.redis.channels())))

    def test_runs_exactly_server_threads_threads(self):
        # threads=2 and a Redis at an IP address: the two shard threads and nothing else (no
        # resolver thread), with streams open and both Redis links up.
        c = self.connect(42)
        self.wait_subscribed("sse:user:42")
        tasks = os.listdir("/proc/%d/task" % self.gw.pid())
        # ThreadSanitizer's runtime runs one background thread of its own.
        with open("/proc/%d/maps" % self.gw.pid()) as f:
            sanitizer_threads = 1 if "libtsan" in f.read() else 0
        self.assertEqual(len(tasks), 2 + sanitizer_threads, "threads: %s" % tasks)
        c.close()

    # ------------------------------------------------------------ subscriptions follow sessions
    def test_subscribes_exactly_what_sessions_need(self):
        clients = [self.connect(42) for _ in range(4)]
        self.wait_subscribed("sse:user:42", "sse:broadcast")
        # Plus the control channel (POST /disconnect), which every instance always holds.
        self.assertEqual(self.redis.channels(), {"sse:user:42", "sse:broadcast", "sse:control"},
                         "the process must subscribe to what its sessions need and no more")
        self.assertEqual(self.redis.numsub("sse:user:42"), {"sse:user:42": 1},
                         "one SUBSCRIBE per process, however many sessions/shards")
        series = self.gw.metrics().series("ssegw_connections")
        self.assertGreaterEqual(len([1 for _, v in series if v > 0]), 2,
                                "4 connections, threads=2: expected both shards used: %s" % series)
        self.assertGreaterEqual(self.gw.metrics().get("ssegw_redis_subscribed_channels"), 2)

        t = self.connect(43, topics=["a"])
        self.wait_subscribed("sse:user:43", "sse:topic:a")
        t.close()
        wait_until(lambda: not ({"sse:user:43", "sse:topic:a"} & self.redis.channels()), 5,
                   message=lambda: "user 43 gone but still subscribed: %s"
                   % sorted(self.redis.channels()))
        for c in clients[:3]:
            c.close()
        self.assertIn("sse:user:42", self.redis.channels(),
                      "still one session of user 42: must stay subscribed")
        clients[3].close()
        wait_until(lambda: "sse:user:42" not in self.redis.channels(), 5,
                   message=lambda: "last session of user 42 left but PUBSUB CHANNELS = %s"
                   % sorted(self.redis.channels()))

    def test_publish_reaches_every_connection(self):
        clients = [self.connect(42) for _ in range(4)]
        bystander = self.connect(43)
        self.wait_subscribed("sse:user:42", "sse:user:43")
        receivers = self.redis.publish("sse:user:42",
                                       {"event": "e", "data": {"n": 1}, "id": "x"})
        self.assertEqual(receivers, 1, "one subscriber connection per process")
        for c in clients:
            ev = c.wait_for_events(1)[0]
            self.assertEqual((ev["event"], ev["id"], ev["data"]), ("e", "x", '{"n":1}'))
            c.wait_for_raw(lambda r: b'event: e\nid: x\ndata: {"n":1}\n\n' in r, 2)
        self.redis.publish("sse:user:43", {"event": "end", "data": 0})
        self.assertEqual(bystander.wait_for_events(1)[0]["event"], "end")
        m = self.gw.metrics()
        self.assertGreaterEqual(m.get("ssegw_events_received_total"), 2)
        self.assertGreaterEqual(m.get("ssegw_frames_delivered_total"), 5)
        self.assertEqual(m.get("ssegw_redis_connected"), 1)

    def test_topic_and_broadcast(self):
        a = self.connect(42, topics=["a"])
        b = self.connect(43)
        self.wait_subscribed("sse:user:42", "sse:user:43", "sse:topic:a", "sse:broadcast")
        self.redis.publish("sse:topic:a", {"event": "ta", "data": 1})
        self.redis.publish("sse:topic:b", {"event": "tb", "data": 1})
        self.redis.publish("sse:broadcast", {"event": "bc", "data": 2})
        self.redis.publish("sse:user:43", {"event": "u43", "data": 3})
        self.redis.publish("sse:broadcast", {"event": "end", "data": 0})
        for c in (a, b):
            c.wait_for_event(lambda e: e["event"] == "end", 5, "end marker")
        self.assertEqual(a.event_names(), ["ta", "bc", "end"])
        self.assertEqual(b.event_names(), ["bc", "u43", "end"])

    def test_non_object_payloads_sent_as_data(self):
        c = self.connect(42)
        self.wait_subscribed("sse:user:42")
        for payload in ("not json {", "[1,2,3]", '"a string"', "42"):
            self.redis.publish("sse:user:42", payload)
        evs = c.wait_for_events(4)
        self.assertEqual([e["data"] for e in evs], ["not json {", "[1,2,3]", '"a string"', "42"])
        self.assertEqual({e["event"] for e in evs}, {"message"})

    def test_junk_payloads_never_break_the_stream(self):
        c = self.connect(42)
        self.wait_subscribed("sse:user:42")
        dropped0 = self.gw.metrics().get("ssegw_events_dropped_total")
        junk = [b"\x00\xff\xfe\x80binary\r\n\x00", b"{\"event\": \"x\", \"data\": ",
                b"", b"{}", b'{"event":"bad\\nname","data":1}', b'{"id":"1\\n2","data":1}',
                b'{"event":"x","data":"' + b"y" * (1 << 20) + b'"}', b"z" * (1 << 20),
                b"\r\r\n\n", b'{"data":"\\u0000nul"}']
        for payload in junk:
            self.redis.cli("PUBLISH", "sse:user:42", payload)
        self.redis.publish("sse:user:42", {"event": "valid", "data": {"ok": True}})
        ev = c.wait_for_event(lambda e: e["event"] == "valid", 10, "valid event after junk")
        self.assertEqual(json.loads(ev["data"]), {"ok": True})
        self.assertFalse(c.closed.is_set(), "junk must not close the stream")
        for e in c.snapshot():
            self.assertLess(len(e["data"]), 70000, "oversize payload delivered")
            self.assertNotIn(e["event"], ("bad\nname", "bad"))
        wait_until(lambda: self.gw.metrics().get("ssegw_events_dropped_total") >= dropped0 + 4,
                   5, message=lambda: "dropped counters: %s"
                   % self.gw.metrics().series("ssegw_events_dropped_total"))
        self.assertIn(self.gw.readyz(), (200,), "junk must not disturb the Redis link")

    # ------------------------------------------------------------ Redis outage
    def test_redis_outage_and_recovery(self):
        clients = [self.connect(42) for _ in range(3)]
        self.wait_subscribed("sse:user:42")
        reconnects0 = self.gw.metrics().get("ssegw_redis_reconnects_total")
        self.redis.kill()
        wait_until(lambda: self.gw.readyz() == 503, 10,
                   message=lambda: "/readyz stays %s with Redis down" % self.gw.readyz())
        self.assertEqual(self.gw.healthz(), 200)
        self.assertEqual(self.gw.metrics().get("ssegw_redis_connected", default=-1), 0)
        counts = [len(c.comments) for c in clients]
        # A stream that starts now is accepted and waits with heartbeats (README, Operating):
        # no position yet, since its history cannot be read.
        late = self.connect(7)
        for c, n in zip(clients + [late], counts + [0]):
            c.wait_for_comments(n + 2, timeout=2 * HEARTBEAT + 4)
            self.assertFalse(c.closed.is_set(), "streams must stay open while Redis is down")
        self.assertFalse([b for b in late.blocks if is_position_block(b)],
                         "a position before the history could be read")
        self.redis.restart()
        wait_until(lambda: self.gw.readyz() == 200, 15,
                   message=lambda: "/readyz stays %s after Redis came back" % self.gw.readyz())
        self.wait_subscribed("sse:user:42", timeout=10)
        self.redis.publish("sse:user:42", {"event": "after", "data": 1})
        for c in clients:
            self.assertEqual(c.wait_for_events(1, timeout=5)[-1]["event"], "after")
            self.assertFalse(c.closed.is_set())
        # ...and once Redis is back it gets its position and goes live on the same connection.
        late.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 10,
                      "the waiting stream's position after Redis came back")
        self.wait_subscribed("sse:user:7", timeout=10)
        self.redis.publish("sse:user:7", {"event": "late", "data": 1})
        self.assertEqual(late.wait_for_events(1, timeout=5)[-1]["event"], "late")
        self.assertEqual(late.status, 200)
        self.assertFalse(late.closed.is_set())
        m = self.gw.metrics()
        self.assertGreater(m.get("ssegw_redis_reconnects_total"), reconnects0)
        self.assertEqual(m.get("ssegw_redis_connected"), 1)

    def test_not_ready_until_redis_reachable(self):
        self.redis.kill()
        wait_until(lambda: self.gw.readyz() == 503, 10)
        self.redis.restart()
        wait_until(lambda: self.gw.readyz() == 200, 15)


class PatternModeTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.gw = self.start_gateway({"redis": {"subscribe_mode": "pattern"},
                                      "sse": {"heartbeat_seconds": HEARTBEAT}},
                                     redis=self.redis, threads=2)

    def test_one_psubscribe_and_delivery(self):
        a = self.sse(self.gw.port, user=42, topics=["a"])
        b = self.sse(self.gw.port, user=43)
        for c in (a, b):
            self.assertEqual(c.status, 200)
            c.wait_for_raw(lambda raw: b"\n\n" in raw, 5)
        wait_until(lambda: self.redis.numpat() == 1, 5,
                   message=lambda: "PUBSUB NUMPAT = %s" % self.redis.numpat())
        self.assertEqual(self.redis.channels(), set(), "pattern mode: no per-channel SUBSCRIBE")
        self.redis.publish("sse:user:42", {"event": "u42", "data": 1})
        self.redis.publish("sse:topic:a", {"event": "ta", "data": 2})
        self.redis.publish("sse:user:44", {"event": "u44", "data": 3})
        self.redis.publish("sse:broadcast", {"event": "end", "data": 0})
        for c in (a, b):
            c.wait_for_event(lambda e: e["event"] == "end", 5, "end marker")
        self.assertEqual(a.event_names(), ["u42", "ta", "end"])
        self.assertEqual(b.event_names(), ["end"])


if __name__ == "__main__":
    unittest.main()

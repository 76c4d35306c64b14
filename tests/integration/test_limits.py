"""Operational limits and browser-facing edges: CORS (preflight, allow-list, credentials),
drains spread over the configured window, the maximum stream lifetime, and the cut of a write
that stalls."""

import signal
import socket
import time
import unittest

from ssegw_testlib import HOST, GatewayTestCase, http_request, wait_until

ALLOWED = "http://app.example"
OTHER = "http://evil.example"


class CorsTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.gw = self.start_gateway({"auth": {"mode": "none"},
                                      "cors": {"allowed_origins": [ALLOWED],
                                               "allow_credentials": True}})

    def test_preflight_answers_only_allowed_origins(self):
        status, headers, _ = http_request(self.gw.port, "OPTIONS", "/events?user=1",
                                          headers={"Origin": ALLOWED,
                                                   "Access-Control-Request-Method": "GET"})
        self.assertEqual(status, 204)
        self.assertEqual(headers.get("access-control-allow-origin"), ALLOWED)
        self.assertEqual(headers.get("access-control-allow-credentials"), "true")
        self.assertIn("GET", headers.get("access-control-allow-methods", ""))
        self.assertIn("Last-Event-ID", headers.get("access-control-allow-headers", ""))
        self.assertIn("Origin", headers.get("vary", ""))
        status, headers, _ = http_request(self.gw.port, "OPTIONS", "/events?user=1",
                                          headers={"Origin": OTHER})
        self.assertEqual(status, 204)
        self.assertNotIn("access-control-allow-origin", headers)

    def test_streams_carry_cors_headers_and_other_origins_are_refused(self):
        c = self.sse(self.gw.port, user="1", headers={"Origin": ALLOWED})
        self.assertEqual(c.status, 200, c.summary())
        self.assertEqual(c.headers.get("access-control-allow-origin"), ALLOWED)
        self.assertEqual(c.headers.get("access-control-allow-credentials"), "true")
        self.assertIn("Origin", c.headers.get("vary", ""))
        refused = self.sse(self.gw.port, user="2", headers={"Origin": OTHER})
        self.assertEqual(refused.status, 403, refused.summary())
        # No Origin header (same-origin page, curl, a backend): not a CORS request.
        plain = self.sse(self.gw.port, user="3")
        self.assertEqual(plain.status, 200)
        self.assertNotIn("access-control-allow-origin", plain.headers)
        # Streams without CORS headers share one opening per shard: a CORS stream after a
        # plain one still gets its own headers, and a plain one after it none.
        again = self.sse(self.gw.port, user="4", headers={"Origin": ALLOWED})
        self.assertEqual(again.headers.get("access-control-allow-origin"), ALLOWED)
        plain_again = self.sse(self.gw.port, user="5")
        self.assertNotIn("access-control-allow-origin", plain_again.headers)
        self.assertEqual(self.gw.metric("ssegw_requests_rejected_total",
                                        reason="origin_not_allowed"), 1)


class DrainTest(GatewayTestCase):
    def test_streams_are_sent_away_spread_over_the_drain_window(self):
        window = 2
        self.gw = self.start_gateway({"auth": {"mode": "none"},
                                      "server": {"drain_seconds": window},
                                      "sse": {"retry_ms": 1000}}, threads=2)
        clients = [self.sse(self.gw.port, user=str(i)) for i in range(40)]
        for c in clients:
            c.wait_for_raw(lambda r: b"\n\n" in r, 5)
        before = [len(c.retries) for c in clients]
        t0 = time.time()  # SseClient.close_time is wall-clock
        self.gw.signal(signal.SIGTERM)
        wait_until(lambda: self.gw.readyz() == 503 or not self.gw.running(), 2,
                   message="/readyz did not turn 503 at once")
        closed_at = []
        for c in clients:
            self.assertTrue(c.wait_closed(window + 10), c.summary())
            closed_at.append(c.close_time - t0)
        for c, n in zip(clients, before):
            self.assertGreater(len(c.retries), n, "retry hint before close: " + c.summary())
            self.assertGreaterEqual(c.retries[-1], 1000)
            self.assertLess(c.retries[-1], 2000, "jitter stays below 2x retry_ms")
        hints = {c.retries[-1] for c in clients}
        self.assertGreater(len(hints), 5, "retry hints are jittered, not all equal: %s" % hints)
        spread = max(closed_at) - min(closed_at)
        print("[limits] drain: 40 streams closed between %.2f s and %.2f s after SIGTERM "
              "(window %d s), %d distinct retry hints" % (min(closed_at), max(closed_at),
                                                          window, len(hints)))
        self.assertGreater(spread, window * 0.5, "closes are spread over the window")
        self.assertLess(max(closed_at), window + 3)
        self.assertEqual(self.gw.stop(expect_code=0, timeout=window + 15, send_signal=False), 0)


class LifetimeTest(GatewayTestCase):
    def test_streams_older_than_max_lifetime_are_sent_back(self):
        lifetime = 10  # the smallest allowed
        self.gw = self.start_gateway({"auth": {"mode": "none"},
                                      "sse": {"max_lifetime_seconds": lifetime,
                                              "retry_ms": 500}})
        c = self.sse(self.gw.port, user="1")
        c.wait_for_raw(lambda r: b"\n\n" in r, 5)
        t0 = time.monotonic()
        n = len(c.retries)
        self.assertTrue(c.wait_closed(lifetime + 4), c.summary())
        took = time.monotonic() - t0
        self.assertGreater(len(c.retries), n, "a retry hint precedes the close")
        # Jittered down by up to 10%, decided on the shard's one-second tick.
        self.assertGreaterEqual(took, lifetime * 0.9 - 1.5)
        self.assertLessEqual(took, lifetime + 2)
        self.assertEqual(self.gw.metric("ssegw_connections_closed_total",
                                        reason="lifetime_reached"), 1)


class WriteStallTest(GatewayTestCase):
    def test_a_write_that_stalls_on_an_idle_stream_is_cut_at_the_write_timeout(self):
        # The shard visits an idle stream only at its next deadline (the heartbeat, 60 s here).
        # A write that starts after that visit and stalls must still be cut write_timeout
        # seconds after it started, not at the heartbeat's visit.
        timeout = 2
        self.gw = self.start_gateway({"auth": {"mode": "none"},
                                      "sse": {"heartbeat_seconds": 60,
                                              "write_timeout_seconds": timeout,
                                              "max_queue_bytes": 64 << 20}})
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        s.connect((HOST, self.gw.port))
        s.sendall(b"GET /events?user=stall HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: self.gw.connections() == 1, 10)
        # Let the stream's first visits pass (the shard ticks once a second): from then on it
        # asks to be visited only at its heartbeat, 60 ticks away. The client never reads.
        time.sleep(2.5)
        # More than the kernel's send buffer can grow to (tcp_wmem's max, 4 MiB by default), so
        # a write is left in flight; under the queue cap, so it is not a slow-consumer cut.
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            send_buffer_max = int(f.read().split()[2])
        pad = "x" * 60000
        events = send_buffer_max // len(pad) + 32
        self.assertLess(events * len(pad), 64 << 20)
        for i in range(events):
            status, body = self.gw.publish({"channel": "user:stall", "data": "%d %s" % (i, pad)})
            self.assertEqual(status, 202, body)
        t0 = time.monotonic()
        wait_until(lambda: self.gw.metric("ssegw_connections_closed_total",
                                          reason="write_stalled") == 1, timeout + 8,
                   message=lambda: "no write_stalled cut; log:\n" + self.gw.log_tail())
        took = time.monotonic() - t0
        self.assertLessEqual(took, timeout + 3)
        self.assertEqual(self.gw.connections(), 0)
        self.assertEqual(self.gw.metric("ssegw_slow_consumer_disconnects_total"), 0)


if __name__ == "__main__":
    unittest.main()

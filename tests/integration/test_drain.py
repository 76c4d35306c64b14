"""SIGTERM drain of one gateway, without a load balancer: for the whole server.drain_seconds
window the public listener stays open and answers every new stream 200 + a jittered retry: +
close (never a refused connection, which a load balancer turns into a 503 that ends a browser's
EventSource for good), /readyz is 503 from the start, and the process exits 0 once the window
is over."""

import signal
import time
import unittest

from ssegw_testlib import GatewayTestCase, SseClient, wait_until

WINDOW = 4          # server.drain_seconds
RETRY_MS = 1000
FLUSH_GRACE = 3     # the gateway's bound on finishing in-flight writes after the window


class DrainWindowTest(GatewayTestCase):
    def test_new_streams_are_answered_come_back_later_for_the_whole_window_then_exit_0(self):
        gw = self.start_gateway({"server": {"drain_seconds": WINDOW},
                                 "sse": {"retry_ms": RETRY_MS}}, threads=2)
        held = self.sse(gw.port, user="held")
        self.assertEqual(held.status, 200, held.summary())
        held.wait_for_raw(lambda r: b"\n\n" in r, 5)
        held_retries = len(held.retries)

        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        # (an instance that stopped answering altogether fails in the probes below)
        wait_until(lambda: gw.readyz() != 200, 1.0, message="/readyz did not turn 503 at once")
        readyz_after = time.monotonic() - t0

        # Probe the public port every ~200 ms until just before the window ends (bounded in
        # count and time). Every probe must be a 200 stream that carries one retry: hint and
        # then ends, with no events.
        probes = []
        while time.monotonic() - t0 < WINDOW - 0.3 and len(probes) < 100:
            at = time.monotonic() - t0
            try:
                c = SseClient(gw.port, user="late%d" % len(probes), timeout=3)
            except OSError as exc:  # ConnectionRefusedError, reset, closed before a head
                self.fail("a new connection %.2f s after SIGTERM was not answered: %r"
                          % (at, exc))
            self.addCleanup(c.close)
            self.assertEqual(c.status, 200, "at %.2f s: %s" % (at, c.summary()))
            self.assertTrue(c.headers.get("content-type", "").startswith("text/event-stream"))
            self.assertTrue(c.wait_closed(3), "not closed at once at %.2f s: %s"
                            % (at, c.summary()))
            self.assertEqual(len(c.retries), 1, c.summary())
            self.assertGreaterEqual(c.retries[0], RETRY_MS)
            self.assertLess(c.retries[0], 2 * RETRY_MS, "jitter stays below 2x retry_ms")
            self.assertEqual(c.events, [], c.summary())
            self.assertEqual(gw.readyz(), 503, "/readyz at %.2f s" % at)
            probes.append((at, c.retries[0]))
            time.sleep(0.2)  # pacing between probes, not a wait for a condition

        self.assertGreaterEqual(len(probes), 10, probes)
        self.assertGreaterEqual(probes[-1][0], WINDOW - 0.8, "probes covered the window")
        self.assertGreater(len({r for _, r in probes}), 1, "retry hints are jittered")
        self.assertEqual(gw.metric("ssegw_requests_rejected_total", reason="draining"),
                         len(probes))

        # The stream that was open before the signal was sent away with a retry hint.
        self.assertTrue(held.wait_closed(WINDOW + 2), held.summary())
        self.assertGreater(len(held.retries), held_retries, held.summary())

        code = gw.stop(expect_code=0, timeout=WINDOW + FLUSH_GRACE + 10, send_signal=False)
        exited_after = time.monotonic() - t0
        print("[drain] /readyz 503 after %.2f s; %d new connections answered 200 + retry: + "
              "close between %.2f s and %.2f s (hints %d..%d ms); exit %d after %.2f s "
              "(window %d s)" % (readyz_after, len(probes), probes[0][0], probes[-1][0],
                                 min(r for _, r in probes), max(r for _, r in probes), code,
                                 exited_after, WINDOW), flush=True)
        self.assertEqual(code, 0)
        self.assertGreaterEqual(exited_after, WINDOW - 0.1, "kept answering for the whole window")
        self.assertLess(exited_after, WINDOW + FLUSH_GRACE + 1, "exited within the grace period")


if __name__ == "__main__":
    unittest.main()

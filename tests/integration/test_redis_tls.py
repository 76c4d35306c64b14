"""rediss://: the gateway's Redis links over TLS against Debian's redis-server with --tls-port
(TLS only: --port 0), certificates made by the test with the openssl CLI (make_test_pki).
Delivery, FCALL history and resume over TLS; a wrong CA, a wrong name and a server that wants
a client certificate are one clear log line, /readyz 503 and bounded retries, never a crash;
verify: false; a client certificate when the server requires one."""

import json
import os
import unittest

from ssegw_testlib import (FailureAwareMixin, GatewayTestCase, assert_redis_refused_cleanly,
                           fcall_publish, is_position_block, make_test_pki, wait_until)


class TlsTest(FailureAwareMixin, GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.pki = make_test_pki(os.path.join(self.tmp, "pki"))

    def pem(self, name):
        return os.path.join(self.pki, name)

    def gateway(self, redis, tls, wait="ready"):
        return self.start_gateway({"redis": {"tls": tls, "reconnect_min_ms": 100,
                                             "reconnect_max_ms": 400},
                                   "sse": {"heartbeat_seconds": 1, "retry_ms": 500}},
                                  redis=redis, wait=wait, threads=2)

    def connect(self, gw, user, **kw):
        c = self.sse(gw.port, user=user, **kw)
        self.assertEqual(c.status, 200, c.body)
        c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5, "position block")
        return c

    def assert_refused_cleanly(self, gw, log_says, seconds=2.0, within=10):
        """The links keep failing for `seconds`: one reason in the log, 503, the process alive,
        retries spaced by the backoff (no tight loop)."""
        wait_until(lambda: log_says in gw.log_text(), within,
                   message=lambda: "log never said %r:\n%s" % (log_says, gw.log_tail()))
        # reconnect_min 100 ms, two links
        return assert_redis_refused_cleanly(self, gw, "ssegw_redis_tls_handshake_failures_total",
                                            seconds)

    # ------------------------------------------------------------------ working TLS

    def test_delivery_history_and_resume_over_tls(self):
        redis = self.start_redis(tls=self.pki)
        gw = self.gateway(redis, {"ca_file": self.pem("ca.crt")})
        c = self.connect(gw, 42)
        wait_until(lambda: "sse:user:42" in redis.channels(), 5)
        redis.cli("PUBLISH", "sse:user:42", json.dumps({"event": "live", "data": "over tls"}))
        self.assertEqual(c.wait_for_events(1)[0]["data"], "over tls")
        with redis.client() as rc:
            p1 = fcall_publish(rc, "user:42", {"event": "h", "data": 1})
            c.wait_for_event(lambda e: e["id"] == p1, 5, "history event %s" % p1)
            c.close()
            missed = [fcall_publish(rc, "user:42", {"event": "h", "data": n}) for n in (2, 3)]
        again = self.sse(gw.port, user=42, headers={"Last-Event-ID": p1})
        self.assertEqual(again.status, 200)
        got = again.wait_for_events(2)
        self.assertEqual([(e["id"], json.loads(e["data"])) for e in got],
                         list(zip(missed, [2, 3])), "the missed events, in order, over TLS")
        m = gw.metrics()
        self.assertEqual(m.get("ssegw_redis_tls_handshake_failures_total"), 0)
        self.assertEqual(m.get("ssegw_redis_info", address="localhost:%d" % redis.port), 1)

    def test_verify_false_accepts_any_certificate(self):
        redis = self.start_redis(tls=self.pki)
        gw = self.gateway(redis, {"ca_file": self.pem("other-ca.crt"), "verify": False})
        self.connect(gw, 7)

    def test_client_certificate_when_the_server_requires_one(self):
        redis = self.start_redis(tls=self.pki, tls_auth_clients=True)
        gw = self.gateway(redis, {"ca_file": self.pem("ca.crt"),
                                  "cert_file": self.pem("client.crt"),
                                  "key_file": self.pem("client.key")})
        c = self.connect(gw, 9)
        wait_until(lambda: "sse:user:9" in redis.channels(), 5)
        redis.cli("PUBLISH", "sse:user:9", json.dumps({"event": "mtls", "data": 1}))
        self.assertEqual(c.wait_for_events(1)[0]["event"], "mtls")

    # ------------------------------------------------------------------ refused cleanly

    def test_wrong_ca(self):
        redis = self.start_redis(tls=self.pki)
        gw = self.gateway(redis, {"ca_file": self.pem("other-ca.crt")}, wait="healthy")
        self.assertGreater(self.assert_refused_cleanly(
            gw, "certificate verify failed (SSL routines) (certificate: self-signed certificate "
                "in certificate chain)"), 0)

    def test_wrong_server_name(self):
        redis = self.start_redis(tls=self.pki)
        gw = self.gateway(redis, {"ca_file": self.pem("ca.crt"), "server_name": "other.example"},
                          wait="healthy")
        self.assert_refused_cleanly(gw, "(certificate: hostname mismatch)")

    def test_server_requires_a_client_certificate_we_do_not_have(self):
        redis = self.start_redis(tls=self.pki, tls_auth_clients=True)
        gw = self.gateway(redis, {"ca_file": self.pem("ca.crt")}, wait="healthy")
        # TLS 1.3: the client's handshake completes; the server's alert ends the first read.
        self.assert_refused_cleanly(gw, "certificate required")

    def test_plain_redis_behind_a_rediss_url(self):
        redis = self.start_redis()  # no TLS at all
        gw = self.start_gateway({"redis": {"tls": {"ca_file": self.pem("ca.crt")},
                                           "reconnect_min_ms": 100, "reconnect_max_ms": 400}},
                                redis="rediss://localhost:%d" % redis.port, wait="healthy")
        # A plain server never answers the ClientHello: the link's watchdog (2 x 10 s) ends it.
        self.assert_refused_cleanly(gw, "TLS handshake timed out (is it a TLS port?)", within=30)
        self.assertTrue(gw.running())


if __name__ == "__main__":
    unittest.main()

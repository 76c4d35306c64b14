"""Standalone-mode (--redis none) integration tests: the SSE wire format, routing of
POST /publish, payload handling, HTTP errors, connection limits, sharding and SIGTERM."""

import json
import re
import signal
import socket
import time
import unittest

from ssegw_testlib import (GatewayTestCase, ReconnectingSseClient, SseClient, http_request,
                           make_jwt, wait_until)

RETRY_MS = 1500
HEARTBEAT = 1


class StandaloneTest(GatewayTestCase):
    CONFIG = {
        "sse": {"heartbeat_seconds": HEARTBEAT, "retry_ms": RETRY_MS, "max_topics": 4,
                "max_event_bytes": 4096},
        "server": {"max_connections_per_user": 64},
    }

    def setUp(self):
        super().setUp()
        self.gw = self.start_gateway(self.CONFIG)

    def connect(self, user=42, topics=(), **kw):
        c = self.sse(self.gw.port, user=user, topics=topics, **kw)
        self.assertEqual(c.status, 200, "status %s body %r" % (c.status, c.body))
        # the handshake block (retry + comment) marks the session as live
        c.wait_for_raw(lambda raw: b"\n\n" in raw, 5, "handshake block")
        return c

    def publish(self, channel, event=None, data=None, **extra):
        body = {"channel": channel}
        if event is not None:
            body["event"] = event
        if data is not None:
            body["data"] = data
        body.update(extra)
        status, reply = self.gw.publish(body)
        self.assertIn(status, (200, 202), "POST /publish %r -> %s %r" % (body, status, reply))
        return reply

    # ---------------------------------------------------------------- wire format
    def test_headers_and_first_bytes(self):
        c = self.connect()
        self.assertTrue(c.status_line.startswith("HTTP/1.1 200"), c.status_line)
        self.assertTrue(c.headers.get("content-type", "").startswith("text/event-stream"),
                        c.headers)
        self.assertEqual(c.headers.get("cache-control"), "no-cache")
        self.assertEqual(c.headers.get("x-accel-buffering"), "no")
        self.assertNotIn("content-length", c.headers, "an SSE stream must not have a length")
        self.assertNotIn("transfer-encoding", c.headers, "no chunked encoding expected")
        raw = c.wait_for_raw(lambda r: b"\n\n" in r and r, 5, "first block")
        expected_first = ("retry: %d\n" % RETRY_MS).encode()
        self.assertTrue(raw.startswith(expected_first), "first bytes %r" % raw[:80])
        second = raw[len(expected_first):]
        self.assertTrue(second.startswith(b":"), "a comment line must follow: %r" % raw[:80])
        line_end = second.index(b"\n")
        self.assertEqual(second[line_end:line_end + 2], b"\n\n",
                         "the comment must end the first block: %r" % raw[:80])
        self.assertEqual(c.retries[:1], [RETRY_MS])
        self.assertEqual(c.events, [], "no event expected before any publish")

    def test_heartbeat_comment(self):
        c = self.connect()
        start = time.monotonic()
        n0 = len(c.comments)
        c.wait_for_comments(n0 + 1, timeout=HEARTBEAT + 2)
        c.wait_for_comments(n0 + 2, timeout=HEARTBEAT + 2)
        self.assertLess(time.monotonic() - start, 2 * (HEARTBEAT + 2))
        self.assertFalse(c.closed.is_set())

    # ---------------------------------------------------------------- routing
    def test_publish_routing(self):
        a = self.connect(user=42, topics=["a"])
        b = self.connect(user=43)
        other = self.connect(user=44, topics=["b"])
        self.publish("user:42", "u42", {"n": 1})
        self.publish("topic:a", "ta", {"n": 2})
        self.publish("broadcast", "bc", {"n": 3})
        self.publish("user:43", "u43", {"n": 4})
        self.publish("topic:zzz", "tz", {"n": 5})
        self.publish("user:99", "u99", {"n": 6})
        self.publish("broadcast", "end", "end")
        for c in (a, b, other):
            c.wait_for_event(lambda e: e["event"] == "end", 5, "end marker")
        self.assertEqual(a.event_names(), ["u42", "ta", "bc", "end"])
        self.assertEqual(b.event_names(), ["bc", "u43", "end"])
        self.assertEqual(other.event_names(), ["bc", "end"])
        self.assertEqual(json.loads(a.events[0]["data"]), {"n": 1})

    def test_exact_frame(self):
        c = self.connect()
        self.publish("user:42", "e", {"n": 1})
        ev = c.wait_for_events(1)[0]
        self.assertEqual((ev["event"], ev["data"]), ("e", '{"n":1}'))
        # POST /publish is the history path: the id (if any) is the gateway's resume position
        frame = re.compile(rb'event: e\n(id: [^\r\n]+\n)?data: \{"n":1\}\n\n')
        c.wait_for_raw(lambda r: frame.search(r), 2, "frame event/[id]/data")

    def test_multiline_data(self):
        c = self.connect()
        self.publish("user:42", "ml", "line1\nline2\n\nline4")
        ev = c.wait_for_events(1)[0]
        self.assertEqual(ev["data"], "line1\nline2\n\nline4")
        c.wait_for_raw(lambda r: b"data: line1\ndata: line2\ndata: \ndata: line4\n\n" in r
                       or b"data: line1\ndata: line2\ndata:\ndata: line4\n\n" in r, 2,
                       "one data: line per line")

    def test_json_data_is_compact(self):
        c = self.connect()
        value = {"a": 1, "b": [1, 2, {"c": None}], "d": {"e": "x y"}, "f": True}
        self.publish("user:42", "js", value)
        ev = c.wait_for_events(1)[0]
        self.assertEqual(json.loads(ev["data"]), value)
        self.assertNotIn("\n", ev["data"])
        compact = ev["data"].replace('"x y"', "")
        self.assertNotIn(" ", compact, "JSON data must be written compactly: %r" % ev["data"])

    def test_string_data_verbatim(self):
        c = self.connect()
        text = 'not json { "quoted" } \\ \u00e9\u4e2d'
        self.publish("user:42", "txt", text)
        ev = c.wait_for_events(1)[0]
        self.assertEqual(ev["data"], text, "a string data value is written as-is, unquoted")

    def test_default_event_name(self):
        c = self.connect()
        self.publish("user:42", data="plain")
        ev = c.wait_for_events(1)[0]
        self.assertEqual(ev["event"], "message")
        self.assertEqual(ev["data"], "plain")

    def test_oversize_payload_dropped_and_counted(self):
        c = self.connect()
        before = self.gw.metrics().get("ssegw_events_dropped_total")
        status, reply = self.gw.publish({"channel": "user:42", "event": "big",
                                         "data": "x" * 10000})
        self.publish("user:42", "small", "ok")
        ev = c.wait_for_events(1, timeout=5)[0]
        self.assertEqual(ev["event"], "small", "the oversize event must not be delivered")
        self.assertFalse(c.closed.is_set(), "the stream must survive an oversize payload")
        if status in (200, 202):
            wait_until(lambda: self.gw.metrics().get("ssegw_events_dropped_total") > before, 5,
                       message="ssegw_events_dropped_total did not increase (publish -> %s)"
                       % status)
        else:
            self.assertEqual(status, 413, "oversize publish answered %s %r" % (status, reply))

    def test_newline_in_event_or_id_refused_at_publish(self):
        # POST /publish refuses, by the delivery path's own rules, what every delivery would
        # drop: a 400 naming the reason, and nothing stored in history or delivered.
        c = self.connect()
        for bad, reason in (({"event": "a\nb", "data": 1}, "bad_event_name"),
                            ({"event": "x", "id": "1\n2", "data": 1}, "bad_id"),
                            ({"event": "x", "retry": -5, "data": 1}, "bad_retry")):
            bad["channel"] = "user:42"
            status, reply = self.gw.publish(bad)
            self.assertEqual(status, 400, "%r -> %s %r" % (bad, status, reply))
            self.assertTrue(reply["error"].startswith(reason + ": "), reply)
        self.publish("user:42", "good", "ok")
        ev = c.wait_for_events(1)[0]
        self.assertEqual(ev["event"], "good")
        self.assertFalse(c.closed.is_set())

    # ---------------------------------------------------------------- sharding
    def test_many_connections_same_user_across_shards(self):
        clients = [self.connect(user=42) for _ in range(20)]
        wait_until(lambda: self.gw.metrics().get("ssegw_connections") == 20, 5,
                   message=lambda: self.gw.metrics().series("ssegw_connections"))
        series = self.gw.metrics().series("ssegw_connections")
        busy = [labels for labels, v in series if v > 0]
        self.assertGreaterEqual(len(busy), 2, "20 connections with threads=2 should use both "
                                "shards: %s" % series)
        self.publish("user:42", "fan", {"k": "v"})
        for c in clients:
            self.assertEqual(c.wait_for_events(1)[0]["event"], "fan")
        for c in clients:
            c.close()
        wait_until(lambda: self.gw.metrics().get("ssegw_connections") == 0, 5,
                   message=lambda: "connections gauge stays at %s"
                   % self.gw.metrics().series("ssegw_connections"))
        m = self.gw.metrics()
        self.assertGreaterEqual(m.get("ssegw_connections_opened_total"), 20)
        self.assertGreaterEqual(m.get("ssegw_connections_closed_total"), 20)
        self.assertGreaterEqual(m.get("ssegw_frames_delivered_total"), 20)

    # ---------------------------------------------------------------- errors
    def assert_http_error(self, status, expected, body):
        self.assertEqual(status, expected, "body %r" % body)
        self.assertTrue(body.strip(), "an error answer carries a short text body")

    def test_404_unknown_path(self):
        c = self.sse(self.gw.port, user=42, path="/nope")
        self.assert_http_error(c.status, 404, c.body)

    def test_405_wrong_method(self):
        status, headers, body = http_request(self.gw.port, "POST", "/events?user=42", body="x")
        self.assert_http_error(status, 405, body)

    def raw_answer(self, request):
        """Sends raw bytes, reads until the gateway closes (bounded): (status line, body)."""
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=5) as s:
            s.sendall(request)
            data = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0].decode("latin-1"), head, body

    def test_400_malformed_http(self):
        # Not closed silently: a 400 with a short reason, as nginx and RFC 9112 do.
        for name, request in (("garbage", b"GARBAGE\r\n\r\n"),
                              ("header line without a colon",
                               b"GET /events?user=42 HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n"),
                              ("bad version", b"GET /events?user=42 HTTP/9\r\n\r\n")):
            status, head, body = self.raw_answer(request)
            self.assertEqual(status, "HTTP/1.1 400 Bad Request", "%s: %r %r" % (name, head, body))
            self.assertIn(b"Content-Length: %d" % len(body), head, name)
            self.assertTrue(body.startswith(b"malformed request"), "%s: body %r" % (name, body))
        self.assertEqual(self.gw.metric("ssegw_requests_rejected_total", reason="bad_request"), 3)

    def test_400_too_many_topics(self):
        c = self.sse(self.gw.port, user=42, topics=["t1", "t2", "t3", "t4", "t5"])
        self.assert_http_error(c.status, 400, c.body)
        c = self.sse(self.gw.port, user=42, topics=["t1", "t2", "t3", "t4"])
        self.assertEqual(c.status, 200, "max_topics=4 allows 4 topics")

    def test_429_per_user_limit(self):
        self.gw.kill()  # this test needs its own limit; SIGTERM has its own test
        self.gw = self.start_gateway(dict(self.CONFIG, server={"max_connections_per_user": 2}))
        c1 = self.connect(user=7)
        c2 = self.connect(user=7)
        c3 = self.sse(self.gw.port, user=7)
        self.assert_http_error(c3.status, 429, c3.body)
        self.assertEqual(self.connect(user=8).status, 200, "other users are not limited")
        self.assertFalse(c1.closed.is_set() or c2.closed.is_set())
        c1.close()

        def fourth_ok():
            c = SseClient(self.gw.port, user=7)
            if c.status == 200:
                self.addCleanup(c.close)
                return True
            c.close()
            return False
        wait_until(fourth_ok, 5, interval=0.1,
                   message="a slot freed by a closed connection was never reusable")

    # ---------------------------------------------------------------- SIGTERM
    def test_sigterm_retry_then_close(self):
        clients = [self.connect(user=u) for u in (1, 2, 3, 3, 4)]
        for c in clients:
            c.wait_for_raw(lambda r: b"\n\n" in r, 5)
        n_retry = [len(c.retries) for c in clients]
        self.gw.signal(signal.SIGTERM)
        drain = self.CONFIG.get("server", {}).get("drain_seconds", 1)
        for c, n in zip(clients, n_retry):
            self.assertTrue(c.wait_closed(drain + 10), "stream not closed after SIGTERM: "
                            + c.summary())
            self.assertGreater(len(c.retries), n, "a retry: hint must precede the close: "
                               + c.summary())
        self.assertEqual(self.gw.stop(expect_code=0, timeout=drain + 15, send_signal=False), 0)


class JwtTest(GatewayTestCase):
    SECRET = "integration-test-secret-0123456789"

    def setUp(self):
        super().setUp()
        self.gw = self.start_gateway({
            "auth": {"mode": "jwt", "jwt": {"secret": self.SECRET, "algorithms": ["HS256"]}},
            "sse": {"heartbeat_seconds": HEARTBEAT, "retry_ms": RETRY_MS}})

    def token(self, **claims):
        base = {"sub": "42", "exp": int(time.time()) + 600, "topics": ["a", "prices.*"]}
        base.update(claims)
        return make_jwt({k: v for k, v in base.items() if v is not None}, self.SECRET)

    def test_401_without_token(self):
        c = self.sse(self.gw.port)
        self.assertEqual(c.status, 401, c.body)
        self.assertTrue(c.body.strip())

    def test_401_bad_signature_and_expired(self):
        bad = make_jwt({"sub": "42", "exp": int(time.time()) + 600}, "wrong-secret")
        self.assertEqual(self.sse(self.gw.port, token=bad).status, 401)
        expired = self.token(exp=int(time.time()) - 3600)
        self.assertEqual(self.sse(self.gw.port, token=expired).status, 401)
        none_alg = make_jwt({"sub": "42", "exp": int(time.time()) + 600}, "", alg="none")
        self.assertEqual(self.sse(self.gw.port, token=none_alg).status, 401)

    def test_403_topic_not_in_token(self):
        c = self.sse(self.gw.port, token=self.token(), topics=["b"])
        self.assertEqual(c.status, 403, c.body)
        self.assertTrue(c.body.strip())

    def test_token_query_header_cookie(self):
        tok = self.token()
        for kw in ({"token": tok},
                   {"headers": {"Authorization": "Bearer " + tok}},
                   {"headers": {"Cookie": "other=1; sse_token=" + tok}}):
            c = self.sse(self.gw.port, topics=["a", "prices.eur"], **kw)
            self.assertEqual(c.status, 200, "%s -> %s %r" % (list(kw), c.status, c.body))
            c.wait_for_raw(lambda r: b"\n\n" in r, 5)
        status, reply = self.gw.publish({"channel": "topic:prices.eur", "event": "p",
                                         "data": 1})
        self.assertIn(status, (200, 202))

    def test_user_from_sub_claim(self):
        c = self.sse(self.gw.port, token=self.token(sub="alice"))
        self.assertEqual(c.status, 200)
        c.wait_for_raw(lambda r: b"\n\n" in r, 5)
        self.gw.publish({"channel": "user:bob", "event": "no", "data": 1})
        self.gw.publish({"channel": "user:alice", "event": "yes", "data": 1})
        self.assertEqual(c.wait_for_events(1)[0]["event"], "yes")


class JwtExpiryTest(GatewayTestCase):
    """A page that reconnects with the same ?token= after its stream was closed for expiry must
    get one 401 (and stop), not a loop of streams accepted within the leeway and closed again."""
    SECRET = "integration-test-secret-0123456789"
    LEEWAY = 2

    def test_expired_token_ends_in_one_401(self):
        gw = self.start_gateway({
            "auth": {"mode": "jwt", "jwt": {"secret": self.SECRET, "algorithms": ["HS256"],
                                            "leeway_seconds": self.LEEWAY}},
            "sse": {"heartbeat_seconds": HEARTBEAT, "retry_ms": 200}})
        exp = int(time.time()) + 2
        token = make_jwt({"sub": "42", "exp": exp}, self.SECRET)
        client = ReconnectingSseClient(gw.port, query=[("token", token)], max_retry_ms=400,
                                       name="expiring").start()
        try:
            client.wait_for(lambda c: c.fatal is not None, exp + self.LEEWAY + 10 - time.time(),
                            "the reconnect after expiry to be refused")
            closed_at = time.time()
        finally:
            client.stop()
        self.assertEqual(client.fatal, 401)
        self.assertEqual(client.connects, 1,
                         "one stream, closed at exp + leeway, then 401: %d streams were opened"
                         % client.connects)
        self.assertGreaterEqual(closed_at, exp + self.LEEWAY - 0.1,
                                "the stream lived until the token's deadline (exp + leeway)")
        self.assertEqual(gw.metric("ssegw_connections_closed_total", reason="token_expired"), 1)


if __name__ == "__main__":
    unittest.main()

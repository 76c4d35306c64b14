"""The backend's handle on its users (issue 13), one gateway at a time: the admin key, GET
/position, POST /disconnect (plain, revoke, jti) and the token-expiring notice. The same verbs
across three gateways behind haproxy are in tests/e2e/test_backend_control_topology.py."""

import json
import os
import subprocess
import time
import unittest

from ssegw_testlib import (GatewayTestCase, Metrics, gateway_binary, http_request, make_jwt,
                           wait_until)

KEY = "s3cret-admin-key-for-tests"
SECRET = "jwt-secret-for-backend-control-tests"


def admin(gw, method, path, body=None, key=KEY, headers=None):
    """One admin request; returns (status, parsed JSON or text)."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Authorization"] = "Bearer " + key
    status, _, raw = http_request(gw.admin_port, method, path, body=body, headers=hdrs)
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def position_of(gw, key=KEY):
    status, body = admin(gw, "GET", "/position", key=key)
    if status != 200:
        raise AssertionError("GET /position answered %s %r" % (status, body))
    return body["position"]


def named(client, name):
    return [e for e in client.events if e["event"] == name]


class AdminKeyTest(GatewayTestCase):
    """With a key, the control verbs need it; probes stay open."""

    PROTECTED = [("POST", "/publish", {"channel": "user:1", "data": "x"}),
                 ("POST", "/disconnect", {"user": "1"}),
                 ("GET", "/position", None),
                 ("GET", "/presence?user=1", None)]

    def check_protected(self, gw, key):
        for method, path, body in self.PROTECTED:
            for wrong in (None, "", "wrong", key + "x", key[:-1]):
                status, _ = admin(gw, method, path, body, key=wrong)
                self.assertEqual(status, 401, "%s %s with key %r" % (method, path, wrong))
            # Another scheme with the right secret is not the bearer key either.
            status, _, _ = http_request(gw.admin_port, method, path, body=body,
                                        headers={"Authorization": "Basic " + key})
            self.assertEqual(status, 401)
            status, _ = admin(gw, method, path, body, key=key)
            self.assertNotEqual(status, 401, "%s %s with the right key" % (method, path))
        for probe in ("/healthz", "/readyz", "/metrics"):
            self.assertEqual(http_request(gw.admin_port, "GET", probe)[0], 200, probe)
        m = Metrics(http_request(gw.admin_port, "GET", "/metrics")[2].decode())
        self.assertEqual(m.get("ssegw_admin_unauthorized_total"), 6 * len(self.PROTECTED))

    def test_key_in_config(self):
        gw = self.start_gateway({"auth": {"mode": "none"}, "admin": {"api_key": KEY}})
        self.check_protected(gw, KEY)
        # Accepted with the right key: the publish reaches a stream, "bearer" in any case.
        c = self.sse(gw.port, user="1")
        c.wait_for_raw(lambda raw: b": connected" in raw, 5)
        status, body = admin(gw, "POST", "/publish", {"channel": "user:1", "data": "hi"},
                             key=None, headers={"Authorization": "bEaReR  " + KEY})
        self.assertEqual(status, 202, body)
        c.wait_for_event(lambda e: e["data"] == "hi", 5)

    def test_key_from_env_and_file(self):
        gw = self.start_gateway({"auth": {"mode": "none"}},
                                env={"SSEGW_ADMIN_API_KEY": KEY + "-env"})
        self.check_protected(gw, KEY + "-env")
        path = os.path.join(self.tmp, "admin.key")
        with open(path, "w") as f:
            f.write(KEY + "-file\n")
        gw2 = self.start_gateway({"auth": {"mode": "none"}, "admin": {"api_key_file": path}})
        self.check_protected(gw2, KEY + "-file")

    def test_without_a_key_the_verbs_are_open(self):
        gw = self.start_gateway({"auth": {"mode": "none"}})
        status, body = admin(gw, "GET", "/position", key=None)
        self.assertEqual(status, 200, body)

    def test_check_config_masks_the_key_and_refuses_both_sources(self):
        def check(cfg):
            path = os.path.join(self.tmp, "check.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            return subprocess.run([gateway_binary(), "--config", path, "--check-config"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)

        out = check({"auth": {"mode": "none"}, "admin": {"api_key": KEY}})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(KEY, out.stdout.decode())
        self.assertEqual(json.loads(out.stdout)["admin"]["api_key"], "***")
        out = check({"auth": {"mode": "none"},
                     "admin": {"api_key": KEY, "api_key_file": "/etc/hostname"}})
        self.assertEqual(out.returncode, 2)
        self.assertIn("admin.api_key_file", out.stderr.decode())

    def test_control_verbs_are_not_on_the_public_port(self):
        gw = self.start_gateway({"auth": {"mode": "none"}, "admin": {"api_key": KEY}})
        for method, path, body in self.PROTECTED:
            status, _, _ = http_request(gw.port, method, path, body=body,
                                        headers={"Authorization": "Bearer " + KEY})
            self.assertEqual(status, 404, path)


class PositionTest(GatewayTestCase):
    """GET /position, then the page's data read, then the stream from that position: every
    event published after the position arrives, none from before."""

    def check_recipe(self, gw):
        def publish(n):
            status, body = admin(gw, "POST", "/publish",
                                 {"channel": "user:7", "event": "item", "data": str(n)})
            self.assertEqual(status, 202, body)

        for n in range(3):
            publish(n)                     # before: the page's data read already shows these
        pos = position_of(gw)
        for n in range(3, 8):
            publish(n)                     # between the position read and the stream open
        c = self.sse(gw.port, user="7", query={"lastEventId": pos})
        self.assertEqual(c.status, 200)
        c.wait_for(lambda c: len(named(c, "item")) >= 5, 5, "the 5 events after the position")
        publish(8)                         # and live after
        c.wait_for(lambda c: len(named(c, "item")) >= 6, 5, "the live event")
        self.assertEqual([e["data"] for e in named(c, "item")], [str(n) for n in range(3, 9)])
        self.assertEqual(named(c, "history-truncated"), [])
        return pos

    def test_standalone(self):
        gw = self.start_gateway({"auth": {"mode": "none"}})
        self.check_recipe(gw)
        m = gw.metrics()
        self.assertEqual(m.get("ssegw_positions_total"), 1)

    def test_redis(self):
        redis = self.start_redis()
        gw = self.start_gateway({"auth": {"mode": "none"}}, redis=redis)
        self.check_recipe(gw)

    def test_redis_before_anything_was_published(self):
        # A fresh Redis has no epoch yet: the position still resumes exactly.
        redis = self.start_redis()
        gw = self.start_gateway({"auth": {"mode": "none"}}, redis=redis)
        pos = position_of(gw)
        status, _ = admin(gw, "POST", "/publish", {"channel": "user:9", "data": "first"})
        self.assertEqual(status, 202)
        c = self.sse(gw.port, user="9", query={"lastEventId": pos})
        c.wait_for_event(lambda e: e["data"] == "first", 5)
        self.assertEqual(named(c, "history-truncated"), [])

    def test_history_disabled_and_redis_down(self):
        gw = self.start_gateway({"auth": {"mode": "none"}, "history": {"enabled": False}})
        status, body = admin(gw, "GET", "/position")
        self.assertEqual(status, 409)
        self.assertIn("history", body["error"])
        redis = self.start_redis()
        gw2 = self.start_gateway({"auth": {"mode": "none"}}, redis=redis)
        redis.kill()
        status, body = admin(gw2, "GET", "/position")
        self.assertEqual(status, 503, body)
        self.assertEqual(gw2.metrics().get("ssegw_position_failures_total"), 1)
        status, _ = admin(gw2, "POST", "/position")
        self.assertEqual(status, 405)


if __name__ == "__main__":
    unittest.main()

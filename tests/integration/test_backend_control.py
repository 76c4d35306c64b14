"""The backend's handle on its users (issue 13), one gateway at a time: the admin key, GET
/position, POST /disconnect (plain, revoke, jti) and the token-expiring notice. The same verbs
across three gateways behind haproxy are in tests/e2e/test_backend_control_topology.py."""

import json
import os
import re
import subprocess
import time
import unittest

from ssegw_testlib import (REPO_ROOT, GatewayTestCase, Metrics, gateway_binary, http_request, make_jwt,
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


def jwt_config(**auth):
    cfg = {"auth": {"mode": "jwt", "jwt": {"secret": SECRET, "leeway_seconds": 0}}}
    cfg["auth"].update(auth)
    return cfg


def token(user, **claims):
    body = {"sub": user, "exp": int(time.time()) + 600}
    body.update(claims)
    return make_jwt({k: v for k, v in body.items() if v is not None}, SECRET)


def connected(client):
    client.wait_for_raw(lambda raw: b": connected" in raw, 5)
    # The stream is live once its position block is written (history read and queued).
    client.wait_for(lambda c: any(b["event"] == "ssegw-position" for b in c.blocks), 5,
                    "the position block")
    return client


class DisconnectTest(GatewayTestCase):
    def test_plain_disconnect_closes_every_stream_of_the_user_with_the_reason(self):
        gw = self.start_gateway({"auth": {"mode": "none"}})
        mine = [connected(self.sse(gw.port, user="1")) for _ in range(2)]
        other = connected(self.sse(gw.port, user="2"))
        status, body = admin(gw, "POST", "/disconnect", {"user": "1", "reason": "bye\nnow"},
                             key=None)
        self.assertEqual(status, 202, body)
        for c in mine:
            c.wait_closed(2)
            last = c.events[-1]
            self.assertEqual((last["event"], last["data"]), ("disconnect", "bye\nnow"))
            self.assertIsNotNone(c.blocks[-1]["retry"], "a retry hint comes with it")
        self.assertFalse(other.closed.is_set())
        # A plain disconnect refuses nothing: the user comes straight back.
        connected(self.sse(gw.port, user="1"))
        m = gw.metrics()
        self.assertEqual(m.get("ssegw_connections_closed_total", reason="disconnected"), 2)
        self.assertEqual(m.get("ssegw_disconnect_requests_total", kind="user"), 1)
        # No reason given: the event still carries one (EventSource skips empty data).
        status, _ = admin(gw, "POST", "/disconnect", {"user": "2"})
        self.assertEqual(status, 202)
        other.wait_closed(2)
        self.assertEqual(other.events[-1]["data"], "disconnected")

    def test_revoke_refuses_older_tokens_here_and_on_instances_started_later(self):
        redis = self.start_redis()
        gw = self.start_gateway(jwt_config(), redis=redis)
        now = int(time.time())
        old = token("7", iat=now - 5)
        no_iat = token("7")
        c = connected(self.sse(gw.port, token=old))
        c2 = connected(self.sse(gw.port, token=no_iat))
        status, body = admin(gw, "POST", "/disconnect",
                             {"user": "7", "reason": "banned", "revoke": True}, key=None)
        self.assertEqual(status, 202, body)
        self.assertGreaterEqual(body["revoked_until"], now + 86400)
        for client in (c, c2):
            client.wait_closed(2)
            self.assertEqual(client.events[-1]["data"], "banned")
        for t in (old, no_iat):
            self.assertEqual(self.sse(gw.port, token=t).status, 401)
        # Issued after the revoke's second: accepted.
        fresh = token("7", iat=int(time.time()) + 1)
        connected(self.sse(gw.port, token=fresh))
        # Another user is untouched.
        connected(self.sse(gw.port, token=token("8", iat=now - 5)))
        # An instance that starts later reads the revocation from Redis.
        gw2 = self.start_gateway(jwt_config(), redis=redis)
        wait_until(lambda: gw2.metric("ssegw_revocations") == 1, 5)
        self.assertEqual(self.sse(gw2.port, token=old).status, 401)
        connected(self.sse(gw2.port, token=fresh))
        m = gw.metrics()
        self.assertEqual(m.get("ssegw_requests_rejected_total", reason="revoked"), 2)
        self.assertEqual(m.get("ssegw_connections_closed_total", reason="revoked"), 2)
        self.assertEqual(m.get("ssegw_disconnect_requests_total", kind="user_revoke"), 1)
        ttl = int(redis.cli("TTL", "sse:revocations"))
        self.assertTrue(86000 < ttl <= 86401, ttl)

    def test_jti_revokes_one_token(self):
        gw = self.start_gateway(jwt_config())
        a = token("5", jti="token-a")
        b = token("5", jti="token-b")
        ca = connected(self.sse(gw.port, token=a))
        cb = connected(self.sse(gw.port, token=b))
        status, body = admin(gw, "POST", "/disconnect", {"jti": "token-a", "reason": "stolen"})
        self.assertEqual(status, 202, body)
        ca.wait_closed(2)
        self.assertEqual(ca.events[-1]["data"], "stolen")
        self.assertEqual(self.sse(gw.port, token=a).status, 401)
        self.assertFalse(cb.closed.is_set())
        connected(self.sse(gw.port, token=b))
        self.assertEqual(gw.metric("ssegw_disconnect_requests_total", kind="jti"), 1)

    def test_bad_bodies_get_400_with_the_reason(self):
        gw = self.start_gateway({"auth": {"mode": "none"}})
        cases = [("not json", "JSON object"), ("[1]", "JSON object"), ({}, "name a"),
                 ({"user": 5}, "\"user\""), ({"user": ""}, "\"user\""),
                 ({"user": "a\nb"}, "\"user\""), ({"jti": ["x"]}, "\"jti\""),
                 ({"user": "1", "revoke": "yes"}, "\"revoke\""),
                 ({"jti": "x", "revoke": True}, "needs a \"user\""),
                 ({"user": "1", "reason": "x" * 1025}, "longer than"),
                 ({"user": "1", "reason": 3}, "\"reason\""),
                 ({"user": "1", "extra": 1}, "unknown field")]
        for body, why in cases:
            status, reply = admin(gw, "POST", "/disconnect", body)
            self.assertEqual(status, 400, (body, reply))
            self.assertIn(why, reply["error"], body)
        self.assertEqual(admin(gw, "GET", "/disconnect")[0], 405)
        self.assertEqual(gw.metric("ssegw_disconnect_bad_requests_total"), len(cases))

    def test_junk_on_the_control_channel_is_counted_not_applied(self):
        redis = self.start_redis()
        gw = self.start_gateway({"auth": {"mode": "none"}}, redis=redis)
        c = connected(self.sse(gw.port, user="1"))
        for junk in ("junk", "{}", '{"user":"1","revoke":true}', '{"jti":"x"}', "[]"):
            redis.publish("sse:control", junk)
        wait_until(lambda: gw.metric("ssegw_control_messages_total", result="malformed") == 5, 5)
        self.assertFalse(c.closed.is_set())
        # A well-formed message published straight to Redis works like POST /disconnect.
        redis.publish("sse:control", '{"user":"1","reason":"from redis","at":0}')
        c.wait_closed(2)
        self.assertEqual(c.events[-1]["data"], "from redis")


class TokenExpiringTest(GatewayTestCase):
    def test_notice_before_exp_then_close_at_exp(self):
        gw = self.start_gateway(jwt_config(expiry_notice_seconds=2))
        exp = int(time.time()) + 4
        c = connected(self.sse(gw.port, token=token("3", exp=exp)))
        c.wait_for_event(lambda e: e["event"] == "token-expiring", 5)
        notice = [e for e in c.events if e["event"] == "token-expiring"][0]
        self.assertEqual(notice["data"], str(exp))
        # Sent by the shard's one-second sweep: within a second after exp - 2.
        self.assertGreaterEqual(notice["t"], exp - 2 - 0.05)
        self.assertLess(notice["t"], exp - 2 + 1.5)
        c.wait_closed(4)
        self.assertGreaterEqual(c.close_time, exp - 0.05)
        self.assertEqual(len([e for e in c.events if e["event"] == "token-expiring"]), 1)
        self.assertEqual(gw.metric("ssegw_token_expiry_notices_total"), 1)
        self.assertEqual(gw.metric("ssegw_connections_closed_total", reason="token_expired"), 1)


def readme_block(heading, lang, nth=0):
    """The nth ```lang block of README.md's "### heading" section, as written."""
    text = (REPO_ROOT / "README.md").read_text()
    at = text.index("\n### %s\n" % heading)
    end = text.find("\n## ", at + 1)
    blocks = re.findall(r"^```%s\n(.*?)^```" % lang, text[at:end], re.S | re.M)
    return blocks[nth]


class ReadmeSnippetsTest(GatewayTestCase):
    """The README's backend-control snippets, run as written (example port 9090 replaced)."""

    def run_sh(self, snippet, gw, key):
        script = snippet.replace("9090", str(gw.admin_port))
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], timeout=30,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, SSEGW_ADMIN_API_KEY=key, KEY=key))
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    def test_admin_key_and_disconnect_curl_lines(self):
        gw = self.start_gateway({"auth": {"mode": "none"}, "admin": {"api_key": KEY}})
        c = connected(self.sse(gw.port, user="42"))
        out = self.run_sh(readme_block("The admin key", "sh"), gw, KEY)
        self.assertIn('"ok":true', out)
        c.wait_for_event(lambda e: e["data"] == "hi", 5)
        out = self.run_sh(readme_block("Disconnect and revoke: POST /disconnect", "sh"), gw, KEY)
        self.assertEqual(out.count('"ok":true'), 3, out)
        c.wait_closed(2)
        self.assertEqual(c.events[-1]["data"], "logged out")
        self.assertEqual(gw.metric("ssegw_disconnect_requests_total", kind="jti"), 1)
        self.assertEqual(self.sse(gw.port, user="42").status, 401, "revoked (mode none: no iat)")

    def test_page_load_recipe(self):
        redis = self.start_redis()
        gw = self.start_gateway({"auth": {"mode": "none"}, "admin": {"api_key": "change-me"}},
                                redis=redis)
        gw2 = self.start_gateway({"auth": {"mode": "none"}}, redis=redis)

        def publish(n):
            status, _ = admin(gw, "POST", "/publish",
                              {"channel": "user:1", "event": "item", "data": str(n)},
                              key="change-me")
            self.assertEqual(status, 202)

        publish(0)  # before the position: part of what the page renders
        rendered = []

        def load_items_from_your_database():
            rendered.append("0")
            publish(1)  # written while the page renders
            return rendered

        snippet = readme_block("Page loads: GET /position", "python")
        scope = {"load_items_from_your_database": load_items_from_your_database}
        exec(snippet.replace("9090", str(gw.admin_port)), scope)
        publish(2)
        # The page opens its stream on another instance (the balancer's choice) from there.
        c = self.sse(gw2.port, user="1", query={"lastEventId": scope["position"]})
        c.wait_for(lambda c: len(named(c, "item")) >= 2, 5, "events 1 and 2")
        publish(3)
        c.wait_for(lambda c: len(named(c, "item")) >= 3, 5, "event 3")
        self.assertEqual([e["data"] for e in named(c, "item")], ["1", "2", "3"])


if __name__ == "__main__":
    unittest.main()

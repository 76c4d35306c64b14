"""The Redis ACL the README gives, run as written, with the default user disabled: the gateway
works under exactly that user (subscriptions, FUNCTION LOAD, new-stream positions, POST
/publish through FCALL, resume through sse_history, presence updates and GET /presence) with the password from each source the
README lists (URL, redis.username/password, redis.password_file, SSEGW_REDIS_PASSWORD); a wrong
password is a clear log line, /readyz 503 and backed-off retries."""

import json
import os
import re
import unittest

from ssegw_testlib import (http_request, FailureAwareMixin, GatewayTestCase, assert_redis_refused_cleanly,
                           install_readme_acl, is_position_block, wait_until)


class AclTest(FailureAwareMixin, GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.user, self.password = install_readme_acl(self.redis)

    def url(self, userinfo=""):
        return "redis://%s127.0.0.1:%d" % (userinfo, self.redis.port)

    def gateway(self, url, redis_config=None, env=None, wait="ready"):
        cfg = {"redis": dict({"reconnect_min_ms": 100, "reconnect_max_ms": 400},
                             **(redis_config or {})),
               "sse": {"heartbeat_seconds": 1, "retry_ms": 500}}
        return self.start_gateway(cfg, redis=url, env=env, wait=wait, threads=2)

    def exercise(self, gw, user):
        """Everything the gateway does with Redis, under the ACL user."""
        c = self.sse(gw.port, user=user)
        self.assertEqual(c.status, 200)
        c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5, "position")
        status, reply = gw.publish({"channel": "user:%s" % user, "event": "h", "data": 1})
        self.assertEqual(status, 202, reply)
        first = reply["id"]
        c.wait_for_event(lambda e: e["id"] == first, 5, "history event")
        c.close()
        status, reply = gw.publish({"channel": "user:%s" % user, "event": "h", "data": 2})
        self.assertEqual(status, 202, reply)
        again = self.sse(gw.port, user=user, headers={"Last-Event-ID": first})
        self.assertEqual(again.status, 200)
        self.assertEqual(again.wait_for_events(1)[0]["id"], reply["id"], "resumed under the ACL")
        # POST /disconnect with a revocation: stored, published, applied under the ACL.
        status, _, body = http_request(gw.admin_port, "POST", "/disconnect",
                                       body={"user": user, "revoke": True})
        self.assertEqual(status, 202, body)
        again.wait_closed(5)
        # Presence (on by default): the gateway's updates and GET /presence under the ACL.
        self.sse(gw.port, user=user + "-p").wait_for_raw(lambda raw: b": connected" in raw, 5)
        wait_until(lambda: json.loads(http_request(
            gw.admin_port, "GET", "/presence?user=%s-p" % user)[2])["users"][user + "-p"]
            == {"connections": 1, "instances": 1}, 5)
        self.assertNotIn("NOPERM", gw.log_text())
        self.assertEqual(gw.metric("ssegw_redis_connected"), 1)

    # ------------------------------------------------------------------ each credential source

    def test_password_in_the_url(self):
        self.exercise(self.gateway(self.url("%s:%s@" % (self.user, self.password))), "u1")

    def test_username_and_password_in_the_config(self):
        self.exercise(self.gateway(self.url(), {"username": self.user,
                                                "password": self.password}), "u2")

    def test_password_file(self):
        path = os.path.join(self.tmp, "redis-password")
        with open(path, "w") as f:
            f.write(self.password + "\n")
        self.exercise(self.gateway(self.url(), {"username": self.user, "password_file": path}),
                      "u3")

    def test_password_from_the_environment(self):
        self.exercise(self.gateway(self.url(), {"username": self.user, "password": "stale"},
                                   env={"SSEGW_REDIS_PASSWORD": self.password}), "u4")

    # ------------------------------------------------------------------ refused cleanly

    def test_an_older_acl_without_the_revocation_commands_still_serves(self):
        # Upgrading behind the previous README's ACL: the stored revocations cannot be read,
        # which is a clear error line, not an instance that never gets ready.
        self.redis.cli("ACL", "SETUSER", self.user, "-zrangebyscore")
        gw = self.gateway(self.url("%s:%s@" % (self.user, self.password)))
        self.assertIn("cannot read the stored revocations (NOPERM", gw.log_text())
        c = self.sse(gw.port, user="old")
        c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5, "position")

    def test_wrong_password(self):
        gw = self.gateway(self.url(), {"username": self.user, "password": "wrong"},
                          wait="healthy")
        wait_until(lambda: "AUTH failed: WRONGPASS" in gw.log_text(), 10,
                   message=lambda: gw.log_tail())
        self.assertNotIn("wrong", re.sub(r"WRONGPASS[^\n]*", "", gw.log_text()).replace(
            "wrong number", ""), "the password itself is never logged")
        # ssegw_redis_reconnects_total counts the subscriber link only.
        tries = assert_redis_refused_cleanly(self, gw, "ssegw_redis_reconnects_total", links=1)
        self.assertGreater(tries, 0, "it keeps retrying")


if __name__ == "__main__":
    unittest.main()

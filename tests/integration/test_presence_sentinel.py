"""Presence in Sentinel mode (issue 13): two gateways find the primary through three sentinels;
counts across them, then a planned SENTINEL FAILOVER: presence carries on from the promoted
replica (its keys and the function library were replicated), and no transition is written twice."""

import json
import time
import unittest

from ssegw_testlib import http_request, wait_until
from test_redis_sentinel import MASTER, SentinelCase, gateway_config

FAST = {"instance_ttl_seconds": 3, "heartbeat_ms": 300, "flush_ms": 100,
        "offline_grace_seconds": 1}


def presence(gw, user):
    status, _, body = http_request(gw.admin_port, "GET", "/presence?user=" + user)
    if status != 200:
        raise AssertionError("GET /presence answered %s %r" % (status, body))
    v = json.loads(body)["users"][user]
    return v["connections"], v["instances"]


class PresenceSentinelTest(SentinelCase):

    def connect(self, gw, user):
        c = self.sse(gw.port, user=user)
        c.wait_for_raw(lambda raw: b": connected" in raw, 5)
        return c

    def expect(self, gw, user, counts, within):
        seen = []
        wait_until(lambda: seen.append(presence(gw, user)) or seen[-1] == counts, within,
                   message=lambda: "presence of %s: %s, expected %s" % (user, seen[-1:], counts))

    def transitions(self, redis):
        out = []
        for _id, fields in redis.cli("XRANGE", "sse:presence", "-", "+"):
            f = dict(zip(fields[::2], fields[1::2]))
            out.append((f["type"], f["user"]))
        return out

    def test_counts_and_a_planned_failover(self):
        self.start_replicated_set()
        cfg = dict(gateway_config(), presence=FAST, auth={"mode": "none"})
        gws = [self.start_gateway(cfg, redis=self.sentinel_url()) for _ in range(2)]
        self.connect(gws[0], "s")
        self.connect(gws[1], "s")
        self.expect(gws[0], "s", (2, 2), 3.0)
        self.assertEqual(self.transitions(self.primary), [("online", "s")])

        self.sentinels[0].cli("SENTINEL", "FAILOVER", MASTER)
        wait_until(lambda: all(s.primary()[1] == self.replica.port for s in self.sentinels), 20,
                   interval=0.1, message="failover never finished")
        # Carries on from the promoted replica: the counts it holds, a new stream, a leaving one.
        leaving = self.connect(gws[1], "t")
        self.expect(gws[0], "t", (1, 1), 10.0)
        self.assertEqual(presence(gws[1], "s"), (2, 2))
        leaving.close()
        wait_until(lambda: ("offline", "t") in self.transitions(self.replica), 5)
        self.assertEqual(self.transitions(self.replica),
                         [("online", "s"), ("online", "t"), ("offline", "t")])
        for gw in gws:
            self.assertTrue(gw.running())


if __name__ == "__main__":
    unittest.main()

"""Presence end to end: three gateways behind haproxy round robin (scripts/topology), 30 users
connecting through the balancer. kill -9 of one gateway: its users reconnect elsewhere through
the balancer; GET /presence on any survivor converges to exactly one stream per user once the
dead instance's records expire, and no user gets an offline entry (they were never gone for
the grace). Prints how long the counts took to converge after the kill."""

import json
import os
import time
import unittest

from ssegw_testlib import (REPO_ROOT, GatewayTestCase, ReconnectingSseClient, Topology,
                          http_request, wait_until)

USERS = ["p%d" % i for i in range(30)]
TTL = 6


def presence(port, users):
    q = "&".join("user=" + u for u in users)
    status, _, body = http_request(port, "GET", "/presence?" + q)
    if status != 200:
        raise AssertionError("GET /presence answered %s %r" % (status, body))
    return {u: (v["connections"], v["instances"]) for u, v in json.loads(body)["users"].items()}


class PresenceTopologyTest(GatewayTestCase):

    def setUp(self):
        super().setUp()
        with open(REPO_ROOT / "config" / "topology.json") as f:
            cfg = json.load(f)
        cfg["presence"] = {"instance_ttl_seconds": TTL, "heartbeat_ms": 500, "flush_ms": 100,
                           "offline_grace_seconds": 3}
        path = os.path.join(self.tmp, "topology-presence.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.topo = Topology(workdir=os.path.join(self.tmp, "topology"),
                             env={"SSEGW_TOPOLOGY_CONFIG": path})
        self.addCleanup(self.topo.stop)
        self._log_sources.append(("topology logs", lambda: self.topo.logs(6000)))
        self.topo.start(timeout=120)

    def transitions(self):
        with self.topo.redis() as r:
            entries = r.call("XRANGE", "sse:presence", "-", "+")
        out = []
        for _id, fields in entries:
            f = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
            out.append((f["type"], f["user"]))
        return out

    def test_kill_9_users_move_counts_converge_no_false_offline(self):
        clients = []
        for u in USERS:
            c = ReconnectingSseClient(self.topo.lb_port, user=u, max_retry_ms=1000).start()
            self.addCleanup(c.stop)
            clients.append(c)
        for c in clients:
            c.wait_for(lambda cl: cl.connected, 20, "connected through haproxy")
        everyone = {u: (1, 1) for u in USERS}
        wait_until(lambda: presence(self.topo.gw_admin(2), USERS) == everyone, 3,
                   message=lambda: "presence: %s" % presence(self.topo.gw_admin(2), USERS))
        on_gw1 = self.topo.metrics(1).get("ssegw_connections")
        self.assertGreater(on_gw1, 0, "round robin put streams on gateway 1")
        self.assertEqual(sorted(self.transitions()), sorted(("online", u) for u in USERS))

        self.topo.kill(1)
        killed = time.monotonic()
        # Its users come back through the balancer on the two others.
        held = lambda: sum(self.topo.metrics(n).get("ssegw_connections") for n in (2, 3))
        wait_until(lambda: held() == len(USERS), 10,
                   message=lambda: "streams on the survivors: %s" % held())
        # Until the dead instance's records expire its users count twice (there and where they
        # came back); then exactly once each, on one instance.
        doubled = lambda: [u for u, p in presence(self.topo.gw_admin(3), USERS).items()
                           if p == (2, 2)]
        wait_until(lambda: len(doubled()) == on_gw1, TTL - 1 - (time.monotonic() - killed),
                   message=lambda: "users counted twice: %s of %d" % (doubled(), on_gw1))
        wait_until(lambda: presence(self.topo.gw_admin(3), USERS) == everyone, TTL + 6,
                   message=lambda: "presence: %s" % presence(self.topo.gw_admin(3), USERS))
        took = time.monotonic() - killed
        self.assertGreater(took, TTL - 1)
        print("\npresence: %d streams of a killed instance moved; counts exact again %.1f s "
              "after the kill (records TTL %d s)" % (on_gw1, took, TTL))
        # The survivors swept the dead instance (once, whichever came first), and nobody was
        # ever announced offline: each user was back well within the grace.
        swept = lambda: [self.topo.metrics(n).get("ssegw_presence_instances_swept_total")
                         for n in (2, 3)]
        wait_until(lambda: sum(swept()) == 1, 3, message=lambda: "swept: %s" % swept())
        time.sleep(1.0)
        self.assertEqual(sorted(self.transitions()), sorted(("online", u) for u in USERS))


if __name__ == "__main__":
    unittest.main()

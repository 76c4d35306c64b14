"""POST /disconnect, revocations, GET /position and the admin key across three gateways behind
haproxy (scripts/topology: redis-server + 3 gateways + haproxy on loopback), the gateways and
haproxy given an admin key through SSEGW_ADMIN_API_KEY as docker-compose does.

Prints how long the disconnect took to close every stream on every instance."""

import json
import os
import time
import unittest

from ssegw_testlib import GatewayTestCase, SseClient, Topology, http_request, wait_until

KEY = "topology-admin-key"


def admin(port, method, path, body=None, key=KEY):
    headers = {"Authorization": "Bearer " + key} if key else {}
    status, _, raw = http_request(port, method, path, body=body, headers=headers)
    try:
        return status, json.loads(raw.decode() or "null")
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class BackendControlTopologyTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.topo = Topology(workdir=os.path.join(self.tmp, "topology"),
                             env={"SSEGW_ADMIN_API_KEY": KEY})
        self.addCleanup(self.topo.stop)
        self._log_sources.append(("topology logs", lambda: self.topo.logs(6000)))
        self.topo.start(timeout=120)

    def stream(self, user, **kw):
        c = SseClient(self.topo.lb_port, user=user, **kw)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.summary())
        c.wait_for(lambda c: any(b["event"] == "ssegw-position" for b in c.blocks), 10,
                   "the position block")
        return c

    def per_gateway(self, name, **labels):
        return [self.topo.metrics(n).get(name, **labels) for n in (1, 2, 3)]

    def test_disconnect_and_revoke_reach_every_instance_within_a_second(self):
        mine = [self.stream("42") for _ in range(9)]
        others = [self.stream("43") for _ in range(3)]
        conns = self.per_gateway("ssegw_connections")
        self.assertTrue(all(c >= 1 for c in conns), "round robin put streams on every gateway: %s"
                        % conns)

        # The admin key is required on every gateway; probes stay open.
        for n in (1, 2, 3):
            self.assertEqual(admin(self.topo.gw_admin(n), "POST", "/disconnect", {"user": "42"},
                                   key=None)[0], 401)
            self.assertEqual(admin(self.topo.gw_admin(n), "GET", "/position", key="nope")[0], 401)
            self.assertEqual(http_request(self.topo.gw_admin(n), "GET", "/readyz")[0], 200)

        # Plain disconnect through gw2: every stream of user 42 on all three instances.
        sent = time.time()
        status, body = admin(self.topo.gw_admin(2), "POST", "/disconnect",
                             {"user": "42", "reason": "logged out"})
        self.assertEqual(status, 202, body)
        for c in mine:
            c.wait_closed(2)
        took = max(c.close_time for c in mine) - sent
        print("\ndisconnect: %d streams of one user on 3 instances closed within %.0f ms"
              % (len(mine), took * 1000))
        self.assertLess(took, 1.0)
        for c in mine:
            self.assertEqual((c.events[-1]["event"], c.events[-1]["data"]),
                             ("disconnect", "logged out"))
        self.assertTrue(not any(c.closed.is_set() for c in others))
        self.assertEqual(sum(self.per_gateway("ssegw_connections_closed_total",
                                              reason="disconnected")), len(mine))
        # Nothing revoked: user 42 comes back, through the balancer, anywhere.
        back = [self.stream("42") for _ in range(3)]

        # Revoke through gw3 (mode none: streams have no iat, so every token of the user).
        sent = time.time()
        status, body = admin(self.topo.gw_admin(3), "POST", "/disconnect",
                             {"user": "42", "reason": "banned", "revoke": True})
        self.assertEqual(status, 202, body)
        for c in back:
            c.wait_closed(2)
            self.assertEqual(c.events[-1]["data"], "banned")
        took = max(c.close_time for c in back) - sent
        print("revoke: %d streams closed within %.0f ms" % (len(back), took * 1000))
        self.assertLess(took, 1.0)
        for n in (1, 2, 3):
            c = SseClient(self.topo.gw_port(n), user="42")
            self.addCleanup(c.close)
            self.assertEqual(c.status, 401, "gw%d refuses the revoked user" % n)
        self.assertEqual(sum(self.per_gateway("ssegw_requests_rejected_total", reason="revoked")),
                         3)
        self.assertEqual(self.per_gateway("ssegw_revocations"), [1, 1, 1])
        self.assertTrue(not any(c.closed.is_set() for c in others))

    def test_position_from_one_instance_resumes_on_another(self):
        pub = lambda n: admin(self.topo.gw_admin(3), "POST", "/publish",
                              {"channel": "user:7", "event": "item", "data": str(n)})
        self.assertEqual(pub(0)[0], 202)
        status, body = admin(self.topo.gw_admin(1), "GET", "/position")
        self.assertEqual(status, 200, body)
        for n in (1, 2):
            self.assertEqual(pub(n)[0], 202)
        c = SseClient(self.topo.lb_port, user="7", query={"lastEventId": body["position"]})
        self.addCleanup(c.close)
        c.wait_for(lambda c: len([e for e in c.events if e["event"] == "item"]) >= 2, 5,
                   "events 1 and 2")
        # The demo's POST /admin/publish through haproxy, which adds the key (docker/haproxy.cfg).
        status, _, raw = http_request(self.topo.lb_port, "POST", "/admin/publish",
                                      body={"channel": "user:7", "event": "item", "data": "3"})
        self.assertEqual(status, 202, raw)
        c.wait_for(lambda c: len([e for e in c.events if e["event"] == "item"]) >= 3, 5,
                   "event 3")
        self.assertEqual([e["data"] for e in c.events if e["event"] == "item"], ["1", "2", "3"])


if __name__ == "__main__":
    unittest.main()

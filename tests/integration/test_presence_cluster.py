"""Presence in Redis Cluster mode (issue 13): two gateways on a 6-node cluster (3 primaries + 3
replicas). Every presence key is in the hash slot of `sse:presence`, so each call is one FCALL
routed by that slot; the tests check counts and transitions across the gateways, that every
presence key lives on the primary owning that slot, a killed gateway's streams expiring, and a
CLUSTER FAILOVER of that primary (presence carries on from the promoted replica: keys and the
function library are replicated)."""

import json
import time
import unittest

from ssegw_testlib import FailureAwareMixin, GatewayTestCase, RedisCluster, http_request, wait_until

FAST = {"instance_ttl_seconds": 3, "heartbeat_ms": 300, "flush_ms": 100,
        "offline_grace_seconds": 1}


def cluster_config(presence=FAST):
    return {"redis": {"mode": "cluster", "reconnect_min_ms": 50, "reconnect_max_ms": 500},
            "history": {"enabled": False}, "presence": presence, "auth": {"mode": "none"}}


def presence(gw, user):
    status, _, body = http_request(gw.admin_port, "GET", "/presence?user=" + user)
    if status != 200:
        raise AssertionError("GET /presence answered %s %r" % (status, body))
    v = json.loads(body)["users"][user]
    return v["connections"], v["instances"]


class PresenceClusterTest(FailureAwareMixin, GatewayTestCase):

    def start_stack(self, presence=FAST):
        self.cluster = RedisCluster(self.tmp)
        self.addCleanup(self.cluster.kill)
        for n in self.cluster.nodes:
            self._log_sources.append(("cluster node :%d" % n.port, n.log_tail))
        self.cluster.start()
        self.gws = [self.start_gateway(cluster_config(presence), redis=self.cluster.url)
                    for _ in range(2)]

    def transitions(self):
        out = []
        for _id, fields in self.cluster.call("XRANGE", "sse:presence", "-", "+"):
            f = dict(zip(fields[::2], fields[1::2]))
            out.append((f["type"], f["user"]))
        return out

    def connect(self, gw, user):
        c = self.sse(gw.port, user=user)
        c.wait_for_raw(lambda raw: b": connected" in raw, 5)
        return c

    def expect(self, gw, user, counts, within):
        seen = []
        wait_until(lambda: seen.append(presence(gw, user)) or seen[-1] == counts, within,
                   message=lambda: "presence of %s: %s, expected %s" % (user, seen[-1:], counts))

    def test_counts_transitions_and_key_placement(self):
        self.start_stack(dict(FAST, lifecycle_stream=True))
        users = ["u%d" % i for i in range(12)]
        clients = {u: [self.connect(gw, u) for gw in self.gws] for u in users}
        for u in users:
            self.expect(self.gws[1], u, (2, 2), 3.0)
        wait_until(lambda: len(self.transitions()) == len(users), 3)
        self.assertEqual(sorted(self.transitions()), sorted(("online", u) for u in users))
        # The lifecycle stream: one "opened" per stream, both gateways' entries in the one key,
        # on the primary owning its slot (the gateways route the call there).
        def opened():
            return sorted(dict(zip(f[::2], f[1::2]))["user"] for _id, f in
                          self.cluster.call("XRANGE", "sse:lifecycle", "-", "+"))
        wait_until(lambda: opened() == sorted(users * 2), 3,
                   message=lambda: "lifecycle entries: %s" % opened())
        self.assertEqual(self.cluster.node(self.cluster.owner("sse:lifecycle"))
                         .cli("EXISTS", "sse:lifecycle"), 1)
        # Every presence key is on the primary owning sse:presence's slot, whatever the user.
        owner = self.cluster.node(self.cluster.owner("sse:presence"))
        keys = owner.cli("KEYS", "sse:*presence*")
        self.assertIn("sse:presence", keys)
        self.assertIn("sse:{sse:presence}:instances", keys)
        for u in users:
            self.assertIn("sse:{sse:presence}:u:" + u, keys)
        for primary, _, _ in self.cluster.shards():
            if primary != owner.port:
                self.assertEqual(self.cluster.node(primary).cli("KEYS", "sse:*presence*"), [])
        for c in clients["u0"]:
            c.close()
        wait_until(lambda: ("offline", "u0") in self.transitions(), 4)
        self.assertEqual(presence(self.gws[0], "u0"), (0, 0))
        # A gateway killed: its streams stop counting once its records expire, and the
        # survivor's calls keep succeeding meanwhile.
        errors = self.gws[1].metric("ssegw_presence_errors_total", op="update")
        self.gws[0].kill()
        self.expect(self.gws[1], "u1", (1, 1), FAST["instance_ttl_seconds"] + 2.0)
        self.assertEqual(self.gws[1].metric("ssegw_presence_errors_total", op="update"), errors)

    def test_failover_of_the_presence_primary(self):
        # Records kept 10 s: a failover on a busy machine may keep presence calls failing for
        # a few seconds, and the instances' records must outlive that.
        self.start_stack(dict(FAST, instance_ttl_seconds=10))
        self.connect(self.gws[0], "f")
        self.expect(self.gws[1], "f", (1, 1), 3.0)
        owner = self.cluster.owner("sse:presence")
        replica = next(reps for primary, reps, _ in self.cluster.shards()
                       if primary == owner)[0]
        # A replica that has not finished its first sync refuses a manual failover.
        wait_until(lambda: "master_link_status:up" in
                   self.cluster.node(replica).cli("INFO", "replication"), 15)
        for attempt in range(3):  # a manual failover that times out is aborted: ask again
            self.cluster.node(replica).cli("CLUSTER", "FAILOVER")
            try:
                wait_until(lambda: self.cluster.owner("sse:presence") == replica, 10,
                           interval=0.1)
                break
            except AssertionError:
                if attempt == 2:
                    raise AssertionError("the replica never took over")
        # Carries on from the promoted replica: the old count, and a new stream.
        self.connect(self.gws[1], "f")
        self.expect(self.gws[0], "f", (2, 2), 5.0)
        self.assertEqual(self.transitions(), [("online", "f")])


if __name__ == "__main__":
    unittest.main()

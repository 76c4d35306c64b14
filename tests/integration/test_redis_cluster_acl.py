"""Redis Cluster mode under the README's Redis ACL, run as written, on every node of a 3-primary
loopback cluster with the default user disabled (issue 10 item 3 for issue 11's mode): two
gateways logged in as the README's user deliver SPUBLISH (live) and FCALL sse_publish (history)
sent by a backend logged in as that user too, resume a stream whose channels live on three
shards on the other gateway, publish to a slot being migrated (ASK, ASKING), apply a POST
/disconnect revocation and answer GET /presence, and no node's ACL LOG records a denial; a
wrong password is one clear log line, /readyz 503 and backed-off retries."""

import json
import re
import unittest

from ssegw_testlib import (ClusterPublisher, FailureAwareMixin, GatewayTestCase, RedisCluster,
                           TEST_ADMIN, assert_redis_refused_cleanly, cluster_key, http_request,
                           install_readme_acl, is_position_block, wait_until)


class ClusterAclTest(FailureAwareMixin, GatewayTestCase):

    def setUp(self):
        super().setUp()
        # Three primaries, no replicas: a replica would need masteruser/masterauth with the
        # default user off, and the failover paths are covered by test_redis_cluster*.
        self.cluster = RedisCluster(self.tmp, primaries=3, replicas=0)
        self.addCleanup(self.cluster.kill)
        for n in self.cluster.nodes:
            self._log_sources.append(("cluster node :%d" % n.port, n.log_tail))
        self.cluster.start()
        for n in self.cluster.nodes:
            self.user, self.password = install_readme_acl(n)
        self.cluster.set_auth(TEST_ADMIN)

    def gateway(self, password, wait="ready"):
        cfg = {"redis": {"mode": "cluster", "username": self.user, "password": password,
                         "reconnect_min_ms": 100, "reconnect_max_ms": 400},
               "history": {"enabled": True},
               "presence": {"heartbeat_ms": 300, "flush_ms": 100},
               "sse": {"heartbeat_seconds": 1, "retry_ms": 500}}
        return self.start_gateway(cfg, redis=self.cluster.url, wait=wait, threads=2)

    def stream(self, gw, user, topics=(), last_event_id=None):
        c = self.sse(gw.port, user=user, topics=topics, last_event_id=last_event_id, timeout=10)
        self.assertEqual(c.status, 200)
        c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 10, "position")
        return c

    @staticmethod
    def data(client):
        return [e["data"] for e in client.snapshot() if e["event"] != "history-truncated"]

    def subscribed(self, channel):
        owner = self.cluster.node(self.cluster.owner(cluster_key(channel)))
        return int(owner.cli("PUBSUB", "SHARDNUMSUB", cluster_key(channel))[1]) >= 1

    def three_shard_stream(self):
        """A user and a topic whose channels and broadcast's lie on three different shards."""
        b_owner = self.cluster.owner(cluster_key("broadcast"))
        for n in range(2000):
            u, t = "acl%d" % n, "acl-t%d" % n
            owners = {self.cluster.owner(cluster_key("user:" + u)),
                      self.cluster.owner(cluster_key("topic:" + t)), b_owner}
            if len(owners) == 3:
                return u, t
        self.fail("no user/topic pair over three shards")

    def test_gateway_and_backend_under_the_readme_acl(self):
        gws = [self.gateway(self.password) for _ in range(2)]
        pub = ClusterPublisher(self.cluster, auth=(self.user, self.password))
        self.addCleanup(pub.close)
        u, t = self.three_shard_stream()
        first = self.stream(gws[0], u, [t])
        wait_until(lambda: self.subscribed("user:" + u) and self.subscribed("topic:" + t), 10)

        # Live only (SPUBLISH) and with history (FCALL sse_publish), from the backend's user.
        self.assertEqual(pub.spublish("user:" + u, "live-1"), 1)
        first.wait_for(lambda c: "live-1" in self.data(c), 5, "SPUBLISH delivery")
        self.assertRegex(pub.fcall("user:" + u, "hist-1"), r"^\d+-\d+$")
        self.assertRegex(pub.fcall("topic:" + t, "hist-2"), r"^\d+-\d+$")
        self.assertRegex(pub.fcall("broadcast", "hist-3"), r"^\d+-\d+$")
        first.wait_for(lambda c: "hist-3" in self.data(c), 5, "FCALL deliveries")
        self.assertEqual(sorted(self.data(first)), ["hist-1", "hist-2", "hist-3", "live-1"])
        last_id = first.parser.last_event_id
        self.assertTrue(last_id.startswith("2:") and last_id.count(",") == 2, last_id)
        first.close()

        # Missed on all three shards, then resumed on the other gateway: exactly those.
        missed = []
        for ch in ("user:" + u, "topic:" + t, "broadcast"):
            pub.fcall(ch, "missed-" + ch)
            missed.append("missed-" + ch)
        status, body = gws[1].publish({"channel": "user:" + u, "data": "missed-admin"})
        self.assertEqual(status, 202, body)
        missed.append("missed-admin")
        again = self.stream(gws[1], u, [t], last_event_id=last_id)
        again.wait_for(lambda c: len(self.data(c)) >= len(missed), 10, "the missed events")
        self.assertEqual(sorted(self.data(again)), sorted(missed))
        self.assertNotIn("history-truncated", again.event_names())

        # POST /publish to a channel whose slot is being migrated (its stream not created yet):
        # the owner answers ASK, the gateway sends ASKING, then the FCALL, to the importing node.
        moving = "user:ask-" + u
        key = cluster_key(moving)
        slot = str(self.cluster.call("CLUSTER", "KEYSLOT", key))
        old = self.cluster.node(self.cluster.owner(key))
        new = self.cluster.node(next(p for p, _, _ in self.cluster.shards() if p != old.port))
        new.cli("CLUSTER", "SETSLOT", slot, "IMPORTING", old.cli("CLUSTER", "MYID"))
        old.cli("CLUSTER", "SETSLOT", slot, "MIGRATING", new.cli("CLUSTER", "MYID"))
        redirects = gws[0].metric("ssegw_redis_redirects_total")
        status, body = gws[0].publish({"channel": moving, "data": "during-the-move"})
        self.assertEqual(status, 202, body)
        self.assertGreater(gws[0].metric("ssegw_redis_redirects_total"), redirects)
        for n in self.cluster.nodes:  # the migration completes: the new node owns the slot
            n.cli("CLUSTER", "SETSLOT", slot, "NODE", new.cli("CLUSTER", "MYID"))
        self.assertEqual(new.cli("XLEN", key), 1)

        # POST /disconnect with a revocation (sorted set + SPUBLISH on the control channel).
        status, _, body = http_request(gws[0].admin_port, "POST", "/disconnect",
                                       body={"user": u, "revoke": True})
        self.assertEqual(status, 202, body)
        again.wait_closed(5)
        # Presence (on by default): both gateways' updates and GET /presence.
        self.sse(gws[0].port, user="p-" + u).wait_for_raw(lambda raw: b": connected" in raw, 5)
        self.sse(gws[1].port, user="p-" + u).wait_for_raw(lambda raw: b": connected" in raw, 5)
        wait_until(lambda: json.loads(http_request(
            gws[1].admin_port, "GET", "/presence?user=p-" + u)[2])["users"]["p-" + u]
            == {"connections": 2, "instances": 2}, 5)

        for gw in gws:
            self.assertNotIn("NOPERM", gw.log_text())
            self.assertEqual(gw.metric("ssegw_redis_connected"), 1)
        for n in self.cluster.nodes:
            self.assertEqual(n.cli("ACL", "LOG"), [], "denials on :%d" % n.port)

    def test_wrong_password(self):
        gw = self.gateway("wrong", wait="healthy")
        wait_until(lambda: "AUTH failed: WRONGPASS" in gw.log_text(), 10,
                   message=lambda: gw.log_tail())
        self.assertNotIn("wrong", re.sub(r"WRONGPASS[^\n]*", "", gw.log_text()),
                         "the password itself is never logged")
        # Without a slot map no shard link exists (ssegw_redis_reconnects_total counts those):
        # the one link that reads the map retries, going from seed to seed, each refused AUTH
        # counted by the node that refused it.
        def refused_auths():
            total = 0
            for n in self.cluster.nodes:
                for entry in n.cli("ACL", "LOG"):
                    fields = dict(zip(entry[0::2], entry[1::2]))
                    total += int(fields["count"]) if fields["reason"] == "auth" else 0
            return total
        tries = assert_redis_refused_cleanly(self, gw, refused_auths, links=1)
        self.assertGreater(tries, 0, "it keeps retrying")


if __name__ == "__main__":
    unittest.main()

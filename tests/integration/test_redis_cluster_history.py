"""Redis Cluster mode with history (docs/architecture.md, "History in a cluster"): a 6-node
cluster (3 primaries + 3 replicas), two gateways.

  ClusterHistoryTest    FCALL sse_publish (and POST /publish) to users over all slots, topics
                        and broadcast: every client gets exactly its events, once, in per-channel
                        order, with composite cursors as ids; a stream whose three channels live
                        on three different shards resumes on the OTHER gateway with exactly the
                        missed events; a single-mode id is an unknown position (truncated + tip)
  ClusterHistoryMovesTest  a slot migration (stream MIGRATEd, publisher following ASK), a
                        CLUSTER FAILOVER and a kill -9 of a primary (replica promoted, missing
                        events the primary acknowledged) while publishing with history: every
                        acknowledged event is delivered exactly once to the streams that stayed
                        connected; a stream resuming from before the lost events is told
                        (history-truncated), never skips them silently"""

import json
import threading
import time
import unittest

from ssegw_testlib import (ClusterPublisher, FailureAwareMixin, GatewayTestCase, RedisCluster,
                           SseClient, Unacknowledged, http_request, wait_until)
from ssegw_testlib import cluster_key as key_of


def history_config(max_len=1000):
    return {"redis": {"mode": "cluster", "reconnect_min_ms": 50, "reconnect_max_ms": 500},
            "history": {"enabled": True, "max_len": max_len},
            "sse": {"heartbeat_seconds": 1, "retry_ms": 500}}


def check_exactly_once(test, label, connections, published):
    """connections: one stream's connections in order, each a list of (event, data) as received;
    published: (data, acknowledged) in publishing order. Every acknowledged event arrives
    exactly once and in order, or is announced: a history-truncated earlier on the same
    connection (a failover lost it, and the stream is told so). Unacknowledged ones (the node
    died with the call in flight) arrive at most once, in their place. Nothing else arrives."""
    index = {d: i for i, (d, _) in enumerate(published)}
    seen, pos = set(), 0
    for n, conn in enumerate(connections):
        announced = False
        for event, d in conn:
            if event == "history-truncated":
                announced = True
                continue
            test.assertIn(d, index, "%s: an event never published to it: %r" % (label, d))
            test.assertNotIn(d, seen, "%s: %r delivered twice" % (label, d))
            i = index[d]
            test.assertGreaterEqual(i, pos, "%s: %r out of order" % (label, d))
            skipped = [p for p, acked in published[pos:i] if acked]
            test.assertTrue(not skipped or announced,
                            "%s, connection %d: %d acknowledged events silently skipped before "
                            "%r: %s" % (label, n + 1, len(skipped), d, skipped[:5]))
            seen.add(d)
            pos = i + 1
    missing = [p for p, acked in published[pos:] if acked]
    test.assertFalse(missing, "%s: acknowledged events never delivered: %s" % (label, missing[:5]))


def received(client):
    return [(e["event"], e["data"]) for e in client.snapshot()]


class ClusterHistoryCase(FailureAwareMixin, GatewayTestCase):

    MAX_LEN = 1000

    def start_stack(self):
        self.cluster = RedisCluster(self.tmp)
        self.addCleanup(self.cluster.kill)
        for n in self.cluster.nodes:
            self._log_sources.append(("cluster node :%d" % n.port, n.log_tail))
        self.cluster.start()
        self.gws = [self.start_gateway(history_config(self.MAX_LEN), redis=self.cluster.url,
                                       threads=2)
                    for _ in range(2)]
        self.pub = ClusterPublisher(self.cluster)
        self.addCleanup(self.pub.close)

    def subscribed(self, channel):
        """Every gateway holding a stream of the channel has it on the primary owning it."""
        owner = self.cluster.node(self.cluster.owner(key_of(channel)))
        return int(owner.cli("PUBSUB", "SHARDNUMSUB", key_of(channel))[1]) >= 1

    def connect(self, gw, user, topics=(), last_event_id=None):
        c = SseClient(gw.port, user=user, topics=topics, last_event_id=last_event_id,
                      timeout=10)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200)
        # The stream is live once its position block (written after the history read) is in.
        c.wait_for(lambda cl: cl.parser.last_event_id.startswith("2:"), 10, "first position")
        return c

    @staticmethod
    def data(client):
        return [e["data"] for e in client.snapshot() if e["event"] != "history-truncated"]


class ClusterHistoryTest(ClusterHistoryCase):
    MAX_LEN = 50  # small, so that a trimmed position is quick to make

    def test_fcall_delivery_and_resume_across_shards(self):
        self.start_stack()
        users = ["u%d" % i for i in range(24)]
        topics = ["t%d" % i for i in range(3)]
        clients = {u: self.connect(self.gws[i % 2], u, [topics[i % 3]])
                   for i, u in enumerate(users)}
        owners = {self.cluster.owner(key_of("user:" + u)) for u in users}
        self.assertEqual(len(owners), 3, "users spread over the three primaries")
        wait_until(lambda: all(self.subscribed("user:" + u) for u in users), 20)

        expected = {u: [] for u in users}
        for round_ in range(3):
            for u in users:
                d = "%s-%d" % (u, round_)
                self.assertRegex(self.pub.fcall("user:" + u, {"data": d}), r"^\d+-\d+$")
                expected[u].append(d)
            for t_i, t in enumerate(topics):
                d = "%s-%d" % (t, round_)
                self.pub.fcall("topic:" + t, {"data": d})
                for i, u in enumerate(users):
                    if i % 3 == t_i:
                        expected[u].append(d)
            self.pub.fcall("broadcast", {"data": "all-%d" % round_})
            for u in users:
                expected[u].append("all-%d" % round_)
        # POST /publish with history on either gateway, routed by slot. Its id is the channel's
        # component as a one-component cursor: the event's place in its channel, which the id
        # of every stream that receives it carries (checked below).
        admin_ids = {}
        for i, u in enumerate(users[:6]):
            status, body = self.gws[i % 2].publish({"channel": "user:" + u, "data": "admin-" + u})
            self.assertEqual(status, 202, body)
            self.assertRegex(body.get("id", ""), r"^2:[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]+$", body)
            admin_ids[u] = body["id"]
            expected[u].append("admin-" + u)
        for u in users:
            clients[u].wait_for(lambda c, u=u: len(self.data(c)) >= len(expected[u]), 10,
                                "all events of " + u)
        time.sleep(0.2)  # would-be duplicates have had time to arrive
        for u in users:
            got = self.data(clients[u])
            self.assertEqual(sorted(got), sorted(expected[u]), u)
            for prefix in (u + "-", "t", "all-", "admin-"):
                self.assertEqual([d for d in got if d.startswith(prefix)],
                                 [d for d in expected[u] if d.startswith(prefix)], u)
            for e in clients[u].snapshot():
                self.assertTrue(e["id"].startswith("2:") and e["id"].count(",") == 2, e)
        for u, id_ in admin_ids.items():
            e = next(e for e in clients[u].snapshot() if e["data"] == "admin-" + u)
            self.assertIn(id_[2:], e["id"][2:].split(","), "the reply's component is in the id")

        # A stream whose user, topic and broadcast channels live on three different shards.
        b_owner = self.cluster.owner(key_of("broadcast"))
        pick = None
        for n in range(2000):
            u, t = "r%d" % n, "x%d" % n
            o = {self.cluster.owner(key_of("user:" + u)), self.cluster.owner(key_of("topic:" + t)),
                 b_owner}
            if len(o) == 3:
                pick = (u, t)
                break
        self.assertIsNotNone(pick)
        u, t = pick
        first = self.connect(self.gws[0], u, [t])
        wait_until(lambda: self.subscribed("user:" + u) and self.subscribed("topic:" + t), 10)
        for i in range(3):
            self.pub.fcall("user:" + u, {"data": "seen-u%d" % i})
            self.pub.fcall("topic:" + t, {"data": "seen-t%d" % i})
        first.wait_for(lambda c: len(self.data(c)) == 6, 10, "seen events")
        last_id = first.parser.last_event_id
        self.assertEqual(last_id.count(","), 2, last_id)
        first.close()
        missed = []
        for i in range(4):
            for ch, tag in (("user:" + u, "u"), ("topic:" + t, "t"), ("broadcast", "b")):
                self.pub.fcall(ch, {"data": "missed-%s%d" % (tag, i)})
                missed.append("missed-%s%d" % (tag, i))
        t0 = time.monotonic()
        second = self.connect(self.gws[1], u, [t], last_event_id=last_id)
        second.wait_for(lambda c: len(self.data(c)) >= len(missed), 10, "replay")
        resume_ms = (time.monotonic() - t0) * 1000
        self.pub.fcall("user:" + u, {"data": "live-after"})
        second.wait_for(lambda c: "live-after" in self.data(c), 10, "live after the replay")
        got = self.data(second)
        self.assertEqual(got[-1], "live-after")
        self.assertEqual(sorted(got[:-1]), sorted(missed), "exactly the missed events")
        for tag in "utb":
            self.assertEqual([d for d in got if d.startswith("missed-" + tag)],
                             [d for d in missed if d.startswith("missed-" + tag)])
        self.assertNotIn("history-truncated", second.event_names())
        print("\ncluster resume on the other gateway, 3 channels on 3 shards: %d events in "
              "%.0f ms (to the last replayed event)" % (len(missed), resume_ms))

        # GET /position for the stream, then events, then a stream opened from that position
        # (?lastEventId=, as a page that loaded its data first does) gets exactly those.
        status, _, body = http_request(self.gws[1].admin_port, "GET",
                                       "/position?user=%s&topic=%s" % (u, t))
        self.assertEqual(status, 200, body)
        position = json.loads(body)["position"]
        self.assertEqual(position.count(","), 2, position)
        self.pub.fcall("topic:" + t, {"data": "after-position-t"})
        self.pub.fcall("broadcast", {"data": "after-position-b"})
        c = SseClient(self.gws[0].port, user=u, topics=[t], query=[("lastEventId", position)],
                      timeout=10)
        self.addCleanup(c.close)
        c.wait_for(lambda cl: len(self.data(cl)) >= 2, 10, "events after the position")
        self.assertEqual(sorted(self.data(c)), ["after-position-b", "after-position-t"])
        status, _, body = http_request(self.gws[1].admin_port, "GET", "/position")
        self.assertEqual(status, 400, body)

        # A single-mode id presented here: an unknown position, then live from the tips.
        foreign = self.connect(self.gws[0], u, [t],
                               last_event_id="6931d2f5a1b2c.1042.1764594933")
        self.assertEqual(foreign.event_names()[:1], ["history-truncated"])
        self.assertIn("unknown-position", foreign.snapshot()[0]["data"])
        self.pub.fcall("topic:" + t, {"data": "after-foreign"})
        foreign.wait_for(lambda c: "after-foreign" in self.data(c), 10, "live")
        self.assertEqual(self.data(foreign), ["after-foreign"])

        # A primary that lost the library (FUNCTION FLUSH, as after a restart without data) gets
        # it again from the gateway on its next call there.
        owner = self.cluster.node(self.cluster.owner(key_of("user:" + u)))
        owner.cli("FUNCTION", "FLUSH")
        status, body = self.gws[0].publish({"channel": "user:" + u, "data": "after-flush"})
        self.assertEqual(status, 202, body)
        self.assertIn("ssegw_cluster_v1", str(owner.cli("FUNCTION", "LIST")))

        # Trimmed past the position (history.max_len 50 per channel): history-truncated names
        # the channel, then what is left of it; the other channels' missed events in full.
        last_id = foreign.parser.last_event_id
        foreign.close()
        for i in range(60):
            self.pub.fcall("user:" + u, {"data": "trim-%d" % i})
        self.pub.fcall("topic:" + t, {"data": "trim-topic"})
        back = self.connect(self.gws[1], u, [t], last_event_id=last_id)
        back.wait_for(lambda c: "trim-59" in self.data(c) and "trim-topic" in self.data(c), 10,
                      "what is left")
        first_event = back.snapshot()[0]
        self.assertEqual(first_event["event"], "history-truncated")
        notice = json.loads(first_event["data"])
        self.assertEqual(notice, {"reason": "trimmed", "channels": ["user:" + u]})
        self.assertEqual([d for d in self.data(back)
                          if d.startswith("trim-") and d != "trim-topic"],
                         ["trim-%d" % i for i in range(10, 60)])

        # Resume latency of a 34-channel stream (user, broadcast, 32 topics over all shards) on
        # the other gateway, one missed event per topic: from the request to its position block.
        topics32 = ["w%d" % i for i in range(32)]
        s0 = self.connect(self.gws[0], "wide", topics32)
        resume_ms = []
        for round_ in range(20):
            last = s0.parser.last_event_id
            s0.close()
            for tp in topics32:
                self.pub.fcall("topic:" + tp, {"data": "%s-%d" % (tp, round_)})
            t0 = time.monotonic()
            s0 = self.connect(self.gws[(round_ + 1) % 2], "wide", topics32, last_event_id=last)
            s0.wait_for(lambda c: len(self.data(c)) >= 32, 10, "32 missed events")
            resume_ms.append((time.monotonic() - t0) * 1000)
            self.assertEqual(sorted(self.data(s0)),
                             sorted("%s-%d" % (tp, round_) for tp in topics32))
            self.assertLessEqual(len(s0.parser.last_event_id), 2 + 34 * 19)
        resume_ms.sort()
        print("cluster resume of a 34-channel stream (32 missed events, %d-byte id): p50 %.0f ms, "
              "max of 20 %.0f ms" % (len(s0.parser.last_event_id), resume_ms[10], resume_ms[-1]))


class ClusterHistoryMovesTest(ClusterHistoryCase):

    def test_migration_and_failover_while_publishing(self):
        self.start_stack()

        shards = self.cluster.shards()  # RedisCluster.start() waited for every replica to show
        fo_primary, fo_replicas, _ = shards[0]  # CLUSTER FAILOVER
        victim, victim_replicas, _ = shards[1]  # kill -9
        # A user of the victim's shard whose stream leaves before the kill and resumes after it.
        resumer = next(u for u in ("k%d" % i for i in range(2000))
                       if self.cluster.owner(key_of("user:" + u)) == victim)
        users = ["m%d" % i for i in range(9)] + [resumer]
        clients = {u: self.connect(self.gws[i % 2], u) for i, u in enumerate(users)}
        leaving = self.connect(self.gws[1], resumer)
        wait_until(lambda: all(self.subscribed("user:" + u) for u in users), 20)

        acked = {u: [] for u in users}
        published = {u: [] for u in users}  # (data, acknowledged), in publishing order
        stop = threading.Event()
        errors = []

        def publish_loop():
            pub = ClusterPublisher(self.cluster)
            n = 0
            try:
                while not stop.is_set() and n < 3000:
                    for u in users:
                        d = "%s-%d" % (u, n)
                        try:
                            pub.fcall("user:" + u, {"data": d}, retry_unsure=False)
                        except Unacknowledged:
                            published[u].append((d, False))
                            continue
                        published[u].append((d, True))
                        acked[u].append(d)
                    n += 1
                    time.sleep(0.01)
            except Exception as e:  # reported by the test thread
                errors.append(e)
            finally:
                pub.close()

        th = threading.Thread(target=publish_loop, daemon=True)
        th.start()
        self.addCleanup(stop.set)
        wait_until(lambda: all(len(acked[u]) >= 20 for u in users), 20)

        # 1. Resharding one user's slot while events flow: importing, migrating, MIGRATE of the
        # stream (its key is the channel's), then the new owner everywhere.
        moved = users[0]
        key = key_of("user:" + moved)
        slot = int(self.cluster.call("CLUSTER", "KEYSLOT", key))
        old = self.cluster.owner(key)
        new = next(p for p, _, _ in self.cluster.shards() if p != old)
        new_id = self.cluster.node(new).cli("CLUSTER", "MYID")
        old_id = self.cluster.node(old).cli("CLUSTER", "MYID")
        self.cluster.node(new).cli("CLUSTER", "SETSLOT", str(slot), "IMPORTING", old_id)
        self.cluster.node(old).cli("CLUSTER", "SETSLOT", str(slot), "MIGRATING", new_id)
        for _ in range(50):
            keys = self.cluster.node(old).cli("CLUSTER", "GETKEYSINSLOT", str(slot), "100")
            keys = [k for k in (keys if isinstance(keys, list) else [keys]) if k]
            if not keys:
                break
            self.cluster.node(old).cli("MIGRATE", "127.0.0.1", str(new), "", "0", "5000",
                                       "KEYS", *keys)
        others = [p for p, _, _ in self.cluster.shards() if p not in (old, new)]
        for port in [new, old] + others:
            self.cluster.node(port).cli("CLUSTER", "SETSLOT", str(slot), "NODE", new_id)
        wait_until(lambda: self.cluster.owner(key) == new, 10)
        n_at_move = len(acked[moved])
        wait_until(lambda: len(acked[moved]) >= n_at_move + 20, 20, message="publishing stalled")

        # 2. CLUSTER FAILOVER of one shard while events flow.
        self.cluster.fail_over_to(fo_replicas[0])
        n_at_fo = min(len(acked[u]) for u in users)
        wait_until(lambda: min(len(acked[u]) for u in users) >= n_at_fo + 20, 20)

        # 3. kill -9 of the other shard's primary after it acknowledged events its replica
        # never got: the replica's link is cut (CLIENT KILL) and cannot come back (its
        # masterauth is refused by a primary without a password), so what the primary
        # acknowledges from then on, and the gateways deliver live, is gone once the replica is
        # promoted. Connected streams got those events live; the stream that left before and
        # resumes after must be told (history-truncated), never skip them silently.
        victim_shard = [u for u in users if self.cluster.owner(key_of("user:" + u)) == victim]
        replica = self.cluster.node(victim_replicas[0])
        wait_until(lambda: "master_link_status:up" in replica.cli("INFO", "replication"), 15)
        leaving.close()  # its reader has stopped: what it got and its last id agree
        leaving_got = received(leaving)
        resume_from = leaving.parser.last_event_id
        replica.cli("CONFIG", "SET", "masterauth", "not-the-password")
        self.cluster.node(victim).cli("CLIENT", "KILL", "TYPE", "replica")
        wait_until(lambda: "master_link_status:down" in replica.cli("INFO", "replication"), 10)
        n_at_cut = len(acked[resumer])
        wait_until(lambda: len(acked[resumer]) >= n_at_cut + 20, 20,
                   message="publishing stalled on the victim's shard")
        self.cluster.node(victim).kill()
        wait_until(lambda: any(p in victim_replicas for p, _, _ in self.cluster.shards())
                   and all(p is not None for p, _, _ in self.cluster.shards()), 30,
                   interval=0.2, message="the replica was never promoted")
        replica.cli("CONFIG", "SET", "masterauth", "")
        n_at_kill = min(len(acked[u]) for u in users)
        wait_until(lambda: min(len(acked[u]) for u in users) >= n_at_kill + 20, 30,
                   message="publishing did not resume after the promotion")
        stop.set()
        th.join(30)
        self.assertFalse(errors, errors)

        # The scenario happened: the promoted replica lacks events its primary acknowledged.
        with replica.client() as c:
            entries = c.call("XRANGE", key_of("user:" + resumer), "-", "+")
        in_history = {json.loads(fields[fields.index(b"p") + 1])["data"]
                      for _, fields in entries}
        lost = [d for d in acked[resumer] if d not in in_history]
        self.assertGreater(len(lost), 0, "the promoted replica has every acknowledged event")

        for u in users:
            clients[u].wait_for(lambda c, u=u: acked[u][-1] in self.data(c), 20,
                                "last acknowledged event of " + u)
        back = self.connect(self.gws[0], resumer, last_event_id=resume_from)
        back.wait_for(lambda c: acked[resumer][-1] in self.data(c), 20, "the resumed stream")
        time.sleep(0.3)  # would-be duplicates have had time to arrive
        for u in users:
            check_exactly_once(self, u, [received(clients[u])], published[u])
            self.assertFalse(clients[u].closed.is_set(), "the stream stayed connected")
            if u not in victim_shard:
                # A migration and a planned failover lose nothing: no stream is told otherwise.
                self.assertNotIn("history-truncated", clients[u].event_names(), u)
        check_exactly_once(self, resumer + " (left and resumed)",
                           [leaving_got, received(back)], published[resumer])
        self.assertIn("history-truncated", back.event_names(),
                      "a resume from before the lost events is told they are gone")
        unsure = sum(1 for u in users for _, ok in published[u] if not ok)
        caught_up = [g.metric("ssegw_history_caught_up_events_total") for g in self.gws]
        moves = [g.metric("ssegw_redis_channel_moves_total") for g in self.gws]
        print("\ncluster history: %d acknowledged events (%d calls cut by the kill, outcome "
              "unknown) across a slot migration, a CLUSTER FAILOVER and a kill -9, each delivered "
              "exactly once to the connected streams; %d acknowledged by the killed primary and "
              "missing on its promoted replica, announced to the resumed stream; channel moves "
              "per gateway %s, events caught up from history after a move %s"
              % (sum(len(a) for a in acked.values()), unsure, len(lost), moves, caught_up))


if __name__ == "__main__":
    unittest.main()

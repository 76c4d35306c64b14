"""A Redis that comes back without the last acknowledged events, deterministically: events are
published with history, Redis takes a snapshot, five more are published (and delivered), then
Redis is killed with -9 and a new primary starts from the snapshot on the same port, as a
promoted replica that missed the last writes would be. Its sequence counter is behind what the
clients have seen.

Before: the next events got positions the clients had already passed, and every live stream and
every resume skipped them silently. Now: the new writer opens a new epoch, live streams get
every later event, and a client resuming from before or inside the lost stretch gets
`history-truncated` (reason failover) first, then everything that exists, exactly once."""

import json
import unittest

from ssegw_testlib import (FailureAwareMixin, GatewayTestCase, fcall_publish, is_position_block,
                           parse_position, wait_until)


class PromotedSnapshotTest(FailureAwareMixin, GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.gw = self.start_gateway({"redis": {"reconnect_min_ms": 100, "reconnect_max_ms": 300},
                                      "sse": {"heartbeat_seconds": 1, "retry_ms": 500}},
                                     redis=self.redis, threads=2)

    def client(self, **kw):
        c = self.sse(self.gw.port, user=42, **kw)
        self.assertEqual(c.status, 200, c.body)
        c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5, "position block")
        return c

    def publish(self, data):
        with self.redis.client() as rc:
            return fcall_publish(rc, "user:42", {"event": "e", "data": data})

    @staticmethod
    def data_of(client):
        return [(e["event"], e["data"]) for e in client.snapshot()]

    def test_live_and_resuming_clients_get_every_later_event(self):
        live = self.client()
        early = self.client()   # leaves before the snapshot's last event
        late = self.client()    # leaves holding a position the new primary never had
        wait_until(lambda: "sse:user:42" in self.redis.channels(), 5)
        p = [self.publish("s%d" % i) for i in (1, 2)]
        early.wait_for_event(lambda e: e["id"] == p[1], 5, "s2")
        early.close()
        p.append(self.publish("s3"))
        self.redis.cli("SAVE")  # what the new primary will have: s1..s3
        p += [self.publish("x%d" % i) for i in range(1, 6)]  # acknowledged, then lost
        for c in (live, late):
            c.wait_for_event(lambda e: e["id"] == p[-1], 5, "x5")
        late.close()
        self.assertEqual(self.data_of(live), [("e", d) for d in
                                              ("s1", "s2", "s3", "x1", "x2", "x3", "x4", "x5")])

        self.redis.kill()
        self.redis.start()  # from dump.rdb: sse:seq is 3 again, sse:epoch the same
        self.assertEqual(self.redis.cli("GET", "sse:seq"), "3")
        wait_until(lambda: self.gw.readyz() == 200 and "sse:user:42" in self.redis.channels(),
                   15, message=lambda: self.gw.log_tail())

        after = [self.publish("n%d" % i) for i in (1, 2, 3)]
        first, last = parse_position(after[0]), parse_position(p[-1])
        self.assertNotEqual(first[0], last[0], "the new writer opened a new epoch")
        self.assertLessEqual(first[1], last[1], "and its numbers are ones the clients passed")

        # The live stream: every later event, in order, once.
        live.wait_for_event(lambda e: e["id"] == after[-1], 10, "n3 on the live stream")
        self.assertEqual(self.data_of(live)[8:], [("e", "n1"), ("e", "n2"), ("e", "n3")],
                         live.summary())
        wait_until(lambda: self.gw.metric("ssegw_history_epoch_changes_total") >= 1, 5)

        # A client that had seen x5 (lost): told, then everything after the surviving s3.
        back_late = self.client(last_event_id=p[-1])
        back_late.wait_for_event(lambda e: e["id"] == after[-1], 10, "n3 after resuming late")
        got = self.data_of(back_late)
        self.assertEqual(got[0][0], "history-truncated", got)
        self.assertEqual(json.loads(got[0][1])["reason"], "failover")
        self.assertEqual(got[1:], [("e", "n1"), ("e", "n2"), ("e", "n3")])

        # A client from before the snapshot: told (x1..x5 are gone), then s3 and the new ones.
        back_early = self.client(last_event_id=p[1])
        back_early.wait_for_event(lambda e: e["id"] == after[-1], 10, "n3 after resuming early")
        got = self.data_of(back_early)
        self.assertEqual(got[0][0], "history-truncated", got)
        self.assertEqual(json.loads(got[0][1])["reason"], "failover")
        self.assertEqual(got[1:], [("e", "s3"), ("e", "n1"), ("e", "n2"), ("e", "n3")])

        # And a position of the new epoch resumes exactly, with no notice.
        self.client().close()
        back_new = self.client(last_event_id=after[0])
        back_new.wait_for_event(lambda e: e["id"] == after[-1], 10, "n3 after a new-epoch id")
        self.assertEqual(self.data_of(back_new), [("e", "n2"), ("e", "n3")])


class GatewayStartTest(FailureAwareMixin, GatewayTestCase):
    """Starting another gateway is not a failover: it finds the history functions installed and
    leaves them (reloading them would reset their per-process state and open a new epoch, and
    every resume across it would be told history-truncated for nothing)."""

    def test_second_gateway_keeps_the_epoch(self):
        redis = self.start_redis()
        first = self.start_gateway(redis=redis, threads=1)
        with redis.client() as rc:
            before = parse_position(fcall_publish(rc, "user:1", "a"))
        second = self.start_gateway(redis=redis, threads=1)
        with redis.client() as rc:
            after = parse_position(fcall_publish(rc, "user:1", "b"))
        self.assertEqual(after[0], before[0], "same epoch")
        self.assertEqual(after[1], before[1] + 1)
        self.assertIn("history functions already installed", second.log_text())
        for gw in (first, second):
            self.assertEqual(gw.metric("ssegw_history_epoch_changes_total"), 0)


if __name__ == "__main__":
    unittest.main()

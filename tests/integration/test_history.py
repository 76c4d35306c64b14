"""History and resume against a real redis-server (and standalone, in-memory history).

FCALL sse_publish / POST /publish carry a resume position (`<epoch>.<global seq>.<seconds>`);
every new stream gets a position block with the current position; a stream that comes back with
Last-Event-ID gets every history event of its channels it missed, in global order, exactly once,
then a position block, then live events, with no gap and no duplicate at the seam; positions it
cannot honour give `event: history-truncated` first. Also: resuming on another instance,
live-only events with their own id, and the Redis pub/sub link being cut under load.

Only this module's tests run here: the fixture below is a base class of its own, not
test_redis.RedisTest (whose tests would otherwise run again)."""

import json
import os
import random
import re
import signal
import threading
import time
import unittest

from ssegw_testlib import (FailureAwareMixin, GatewayTestCase, SseClient, fcall_publish,
                           is_position_block, parse_position, position_seq, wait_until)

HEARTBEAT = 1
TRUNCATED = "history-truncated"


# ---------------------------------------------------------------------------- small helpers

def data_events(client):
    """(event, id, data) of every dispatched event, in arrival order."""
    return [(e["event"], e["id"], e["data"]) for e in client.snapshot()]


def committed_id(client, default):
    """What a browser would send back after this stream ended: the last event id set by a
    COMPLETE block (an id line of a block cut in the middle does not count)."""
    with client._cond:
        return client.blocks[-1]["last_event_id"] if client.blocks else default


def split_replay(client):
    """(events before the first position block, the first position block, everything after):
    on a resumed stream the first part is the replay, the block the new position."""
    with client._cond:
        blocks = list(client.blocks)
    before, after, pos = [], [], None
    for b in blocks:
        if pos is None and is_position_block(b):
            pos = b
        elif b["data"]:
            (before if pos is None else after).append(b)
    return before, pos, after


def same_position(a, b):
    """Two positions name the same point of the history: same epoch and global sequence (the
    seconds part is when the position was taken, e.g. a position block says 'now')."""
    pa, pb = parse_position(a), parse_position(b)
    return pa is not None and pb is not None and pa[:2] == pb[:2] and abs(pa[2] - pb[2]) <= 5


def diff_summary(expected, got, limit=8):
    """A readable account of how two event lists differ."""
    if expected == got:
        return "identical"
    first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
                 min(len(expected), len(got)))
    exp_set, got_set = set(expected), set(got)
    missing = [x for x in expected if x not in got_set]
    extra = [x for x in got if x not in exp_set]
    seen, dups = set(), []
    for x in got:
        if x in seen:
            dups.append(x)
        seen.add(x)
    return ("expected %d got %d; first difference at index %d (expected %r, got %r); "
            "missing %d %r; unexpected %d %r; duplicated %d %r; same set but reordered: %s"
            % (len(expected), len(got), first,
               expected[first] if first < len(expected) else None,
               got[first] if first < len(got) else None,
               len(missing), missing[:limit], len(extra), extra[:limit], len(dups), dups[:limit],
               exp_set == got_set and not dups))


class PositionAsserts:
    def assertPosition(self, got, want, msg=None):
        if not same_position(got, want):
            self.fail("position %r is not %r (same epoch and sequence)%s"
                      % (got, want, ": " + msg if msg else ""))


class HistoryFixture(FailureAwareMixin, PositionAsserts, GatewayTestCase):
    """Redis + one gateway (threads 2) with history; helpers to publish and resume.
    Has no tests of its own."""

    HISTORY = {}

    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.gw = self.start_gateway(self.config(), redis=self.redis, threads=2)
        self.rc = self.redis.client(timeout=10)
        self.addCleanup(self.rc.close)
        self.published = []     # (position, channel, event, data) in publish (= seq) order

    def config(self):
        return {"sse": {"heartbeat_seconds": HEARTBEAT, "retry_ms": 1000,
                        "max_event_bytes": 65536},
                "redis": {"subscribe_mode": "per-channel",
                          "reconnect_min_ms": 100, "reconnect_max_ms": 500},
                "history": dict({"enabled": True, "max_len": 1000, "ttl_seconds": 600},
                                **self.HISTORY)}

    # -- publishing
    def pub(self, channel, event, data, via="fcall", gw=None):
        """Publish with history (FCALL or POST /publish); returns the position."""
        if via == "fcall":
            pos = fcall_publish(self.rc, channel, {"event": event, "data": data})
        else:
            status, reply = (gw or self.gw).publish({"channel": channel, "event": event,
                                                     "data": data})
            self.assertEqual(status, 202, "POST /publish answered %s %r" % (status, reply))
            self.assertIsInstance(reply, dict, reply)
            self.assertIs(reply.get("ok"), True, reply)
            pos = reply.get("id")
        self.assertIsNotNone(parse_position(pos), "publish returned %r, not a position" % pos)
        self.published.append((pos, channel, event, data))
        return pos

    def expected_for(self, channels, after=None):
        """(event, id, data) a client of these channels must get, published after `after`."""
        floor = position_seq(after) if after else -1
        return [(ev, pos, data) for pos, ch, ev, data in self.published
                if ch in channels and position_seq(pos) > floor]

    # -- subscribing
    def open(self, user=42, topics=(), last_event_id=None, query=None, port=None,
             wait_position=True):
        """An SSE stream; last_event_id goes in the Last-Event-ID header (and seeds the
        parser's id, as EventSource keeps its last event id across reconnections)."""
        c = SseClient(port or self.gw.port, user=user, topics=topics, query=query,
                      last_event_id=last_event_id, connect=False)
        self.addCleanup(c.close)
        if last_event_id:
            c.parser.last_event_id = last_event_id
        c.connect()
        self.assertEqual(c.status, 200, "status %s body %r" % (c.status, c.body))
        if wait_position:
            c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5,
                       "a position block")
        return c

    def wait_subscribed(self, *channels, timeout=5):
        wait_until(lambda: set(channels) <= self.redis.channels(), timeout,
                   message=lambda: "want %s, PUBSUB CHANNELS sse:* = %s"
                   % (sorted(channels), sorted(self.redis.channels())))

    def wait_event_id(self, client, pos, timeout=5):
        return client.wait_for_event(lambda e: e["id"] == pos, timeout,
                                     "event with id %s" % pos)

    def tip(self):
        return self.published[-1][0] if self.published else None

    def metric_values(self, gw=None):
        m = (gw or self.gw).metrics()
        return {k: m.get("ssegw_" + k) for k in (
            "resumes_total", "resume_replayed_events_total", "resume_truncated_total",
            "resume_unknown_position_total", "resume_failures_total",
            "history_caught_up_events_total", "resume_latency_seconds_count")}

    def assert_metric_deltas(self, before, gw=None, **expected):
        after = self.metric_values(gw)
        got = {k: after[k] - before[k] for k in expected}
        self.assertEqual(got, {k: float(v) for k, v in expected.items()},
                         "metric deltas (before %s, after %s)" % (before, after))


# ============================================================================ Redis-backed

class HistoryTest(HistoryFixture):

    def test_fcall_and_post_publish_carry_increasing_ids(self):
        c = self.open(42)
        self.wait_subscribed("sse:user:42")
        start = position_seq(split_replay(c)[1]["id"])
        before = time.time()
        positions = []
        for i in range(6):
            positions.append(self.pub("user:42", "h", "n%d" % i,
                                      via="fcall" if i % 2 == 0 else "http"))
        parsed = [parse_position(p) for p in positions]
        self.assertEqual(len({p[0] for p in parsed}), 1, "one epoch: %s" % positions)
        seqs = [p[1] for p in parsed]
        self.assertEqual(seqs, sorted(seqs), positions)
        self.assertEqual(len(set(seqs)), len(seqs), positions)
        self.assertGreater(seqs[0], start, "published after the stream's position")
        for p in parsed:
            self.assertLessEqual(abs(p[2] - before), 5, "the position's time is unix seconds")
        c.wait_for_events(6)
        self.assertEqual(data_events(c), self.expected_for({"user:42"}),
                         "live delivery carries the publish's position as id")
        # the live stream writes exactly `event`, `id`, `data`
        c.wait_for_raw(lambda r: ("event: h\nid: %s\ndata: n5\n\n" % positions[5]).encode()
                       in r, 2, "raw frame of the last event")

    def test_missed_events_replayed_once_in_order_then_live(self):
        m0 = self.metric_values()
        c = self.open(42)
        self.wait_subscribed("sse:user:42")
        self.pub("user:42", "r", "0")
        c.wait_for_events(1)
        last = committed_id(c, "")
        self.assertEqual(last, self.tip())
        c.close()
        for n in range(1, 6):
            self.pub("user:42", "r", str(n), via="fcall" if n % 2 else "http")
        missed = self.expected_for({"user:42"}, after=last)
        again = self.open(42, last_event_id=last)
        replay, pos, after = split_replay(again)
        self.assertEqual([(e["event"], e["id"], e["data"]) for e in replay], missed,
                         "replay before the position block")
        self.assertPosition(pos["id"], self.tip(), "the position block is the newest position")
        self.assertFalse([e for e in again.snapshot() if e["event"] == TRUNCATED])
        # live after the replay, with nothing twice
        self.wait_subscribed("sse:user:42")
        self.pub("user:42", "r", "6")
        self.redis.publish("sse:user:42", {"event": "live", "data": "7"})
        again.wait_for_event(lambda e: e["event"] == "live", 5, "live-only event after replay")
        self.assertEqual(data_events(again),
                         missed + self.expected_for({"user:42"})[-1:] + [("live", None, "7")])
        # the same through ?lastEventId= (no header)
        q = self.open(42, query=[("lastEventId", last)])
        q.wait_for_events(6)
        self.assertEqual(data_events(q), self.expected_for({"user:42"}, after=last))
        # the header wins over the query parameter
        h = self.open(42, last_event_id=self.published[3][0],
                      query=[("lastEventId", last)])
        h.wait_for(lambda cl: split_replay(cl)[1] is not None, 5, "position block")
        self.assertEqual(data_events(h), self.expected_for({"user:42"},
                                                           after=self.published[3][0]))
        self.assert_metric_deltas(m0, resumes_total=3, resume_replayed_events_total=5 + 6 + 3,
                                  resume_truncated_total=0, resume_unknown_position_total=0,
                                  resume_failures_total=0)

    def test_user_topics_and_broadcast_interleaved(self):
        mine = {"user:42", "topic:a", "topic:b", "broadcast"}
        channels = ["user:42", "topic:a", "topic:b", "broadcast", "user:43", "topic:c",
                    "user:420", "topic:ab"]
        rnd = random.Random(7)
        live = self.open(42, topics=["a", "b"])
        c = self.open(42, topics=["a", "b"])
        self.wait_subscribed("sse:user:42", "sse:topic:a", "sse:topic:b", "sse:broadcast")
        self.pub("broadcast", "x", "first")
        c.wait_for_events(1)
        last = committed_id(c, "")
        c.close()
        for i in range(60):
            ch = channels[i % len(channels)] if i < len(channels) else rnd.choice(channels)
            self.pub(ch, "x", "%s#%d" % (ch, i), via="http" if i % 5 == 0 else "fcall")
        expected = self.expected_for(mine, after=last)
        self.assertGreater(len(expected), 20)
        again = self.open(42, topics=["a", "b"], last_event_id=last)
        replay, pos, _ = split_replay(again)
        self.assertEqual([(e["event"], e["id"], e["data"]) for e in replay], expected,
                         diff_summary(expected, [(e["event"], e["id"], e["data"])
                                                 for e in replay]))
        self.assertPosition(pos["id"], self.tip(), "position block = newest global position, "
                         "even when the newest event is on another channel")
        # the stream that stayed connected saw the same, live
        everything = self.expected_for(mine)
        live.wait_for_events(len(everything), timeout=5)
        self.assertEqual(data_events(live), everything,
                         diff_summary(everything, data_events(live)))

    def test_resume_on_another_instance(self):
        gw_b = self.start_gateway(self.config(), redis=self.redis, threads=2)
        m0 = self.metric_values(gw_b)
        a = self.open(42, topics=["a"])
        self.wait_subscribed("sse:user:42", "sse:topic:a")
        self.pub("user:42", "e", "0")
        self.pub("topic:a", "e", "1", via="http")
        a.wait_for_events(2)
        last = committed_id(a, "")
        a.close()
        for n in range(2, 9):
            self.pub(["user:42", "topic:a", "broadcast", "user:7"][n % 4], "e", str(n),
                     via="http" if n % 3 == 0 else "fcall", gw=gw_b if n % 2 else self.gw)
        mine = {"user:42", "topic:a", "broadcast"}
        b = self.open(42, topics=["a"], last_event_id=last, port=gw_b.port)
        replay, pos, _ = split_replay(b)
        expected = self.expected_for(mine, after=last)
        got = [(e["event"], e["id"], e["data"]) for e in replay]
        self.assertEqual(got, expected, diff_summary(expected, got))
        self.assertPosition(pos["id"], self.tip())
        wait_until(lambda: gw_b.metrics().get("ssegw_redis_subscribed_channels") >= 3, 5)
        self.pub("topic:a", "e", "live")
        self.wait_event_id(b, self.tip())
        self.assertEqual(data_events(b), self.expected_for(mine, after=last))
        self.assert_metric_deltas(m0, gw=gw_b, resumes_total=1,
                                  resume_replayed_events_total=len(expected),
                                  resume_truncated_total=0, resume_unknown_position_total=0)

    def test_malformed_or_foreign_last_event_id(self):
        c = self.open(42)
        self.wait_subscribed("sse:user:42")
        for n in range(3):
            self.pub("user:42", "e", str(n))
        c.wait_for_events(3)
        epoch, seq, secs = parse_position(self.tip())
        other_epoch = ("1" if epoch[0] != "1" else "2") + epoch[1:]
        bad = {
            "junk": "junk",
            "redis stream id": "1700000000000-0",
            "another epoch": "%s.%d.%d" % (other_epoch, seq, secs),
            "ahead of the tip": "%s.%d.%d" % (epoch, seq + 1000, secs),
            "not hex epoch": "zz.%d.%d" % (seq, secs),
            "missing time": "%s.%d" % (epoch, seq),
        }
        m0 = self.metric_values()
        for how in ("header", "query"):
            for label, lid in bad.items():
                with self.subTest(how=how, last_event_id=label):
                    if how == "header":
                        s = self.open(42, last_event_id=lid)
                    else:
                        s = self.open(42, query=[("lastEventId", lid)])
                    replay, pos, _ = split_replay(s)
                    self.assertEqual([(e["event"], json.loads(e["data"])) for e in replay],
                                     [(TRUNCATED, {"reason": "unknown-position"})],
                                     "%s Last-Event-ID %r: raw %r" % (how, lid, bytes(s.raw)))
                    self.assertPosition(pos["id"], self.tip(), "then the current position")
                    self.assertIsNotNone(parse_position(pos["id"]))
                    s.close()
        self.assert_metric_deltas(m0, resumes_total=2 * len(bad),
                                  resume_unknown_position_total=2 * len(bad),
                                  resume_truncated_total=2 * len(bad),
                                  resume_replayed_events_total=0)
        # and the stream is live afterwards
        s = self.open(42, last_event_id="junk")
        self.pub("user:42", "after", "x")
        self.redis.publish("sse:user:42", {"event": "live", "data": "y"})
        s.wait_for_event(lambda e: e["event"] == "live", 5, "live event")
        self.assertEqual([e[0] for e in data_events(s)], [TRUNCATED, "after", "live"])

    def test_empty_last_event_id_is_a_fresh_stream(self):
        """An empty Last-Event-ID (EventSource never sends one) means 'no position': a plain
        fresh stream, not a resume."""
        self.pub("user:42", "old", "0")
        m0 = self.metric_values()
        for kw in ({"headers": {"Last-Event-ID": ""}}, {"query": [("lastEventId", "")]}):
            with self.subTest(**{k: repr(v) for k, v in kw.items()}):
                s = SseClient(self.gw.port, user=42, **kw)
                self.addCleanup(s.close)
                self.assertEqual(s.status, 200)
                s.wait_for(lambda cl: split_replay(cl)[1] is not None, 5, "position block")
                replay, pos, _ = split_replay(s)
                self.assertEqual(replay, [], "nothing replayed, no notice: %r" % bytes(s.raw))
                self.assertIsNotNone(parse_position(pos["id"]), pos)
                self.wait_subscribed("sse:user:42")
                self.pub("user:42", "live", "1")
                self.wait_event_id(s, self.tip())
                s.close()
        self.assert_metric_deltas(m0, resumes_total=0, resume_unknown_position_total=0)

    def test_fresh_stream_gets_the_current_position(self):
        # before anything was ever published
        s0 = self.open(42)
        first = split_replay(s0)[1]["id"]
        self.assertIsNotNone(parse_position(first), "position block %r" % first)
        with s0._cond:
            self.assertTrue(s0.raw.startswith(b"retry: 1000\n"), bytes(s0.raw[:80]))
            self.assertIn(b": connected", bytes(s0.raw))
        self.wait_subscribed("sse:user:42", "sse:broadcast")
        # the newest events are on channels no stream of this instance holds
        for ch in ["user:42", "broadcast", "user:9", "topic:z", "user:77"]:
            self.pub(ch, "before", ch)
        s = self.open(77, topics=["q"])
        replay, pos, _ = split_replay(s)
        self.assertEqual(replay, [])
        self.assertPosition(pos["id"], self.tip(),
                            "a fresh stream's position block must be the global tip, whatever "
                            "channel the newest event was on (published: %s)"
                            % [(p, ch) for p, ch, _, _ in self.published])
        self.assertPosition(s.parser.last_event_id, self.tip(), "EventSource's lastEventId")
        # a client that drops at once and comes back with that position must not get events
        # published before it ever connected
        fresh_pos = committed_id(s, "")
        s.close()
        r = self.open(77, topics=["q"], last_event_id=fresh_pos)
        replay, pos, _ = split_replay(r)
        self.assertEqual([(e["event"], e["id"], e["data"]) for e in replay], [],
                         "resumed from its fresh position %s: replayed events published "
                         "before the first stream opened" % fresh_pos)
        self.assertPosition(pos["id"], self.tip())
        # events published right after the position block reach the stream: no gap even
        # before the SUBSCRIBE for a new channel has landed
        n = self.open(55)
        p = self.pub("user:55", "right-after", "x")
        self.wait_event_id(n, p)
        self.assertEqual(data_events(n), [("right-after", p, "x")])

    def test_streams_opening_together_each_get_the_tip(self):
        # Streams asking where history stands in the same loop turn share one read of it
        # (redis_broker::read_tip): each must still get the tip, and miss nothing after it.
        self.pub("broadcast", "before", 0)
        users = [1000 + i for i in range(24)]
        clients = [SseClient(self.gw.port, user=u, connect=False) for u in users]
        for c in clients:
            self.addCleanup(c.close)
        threads = [threading.Thread(target=c.connect, daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for u, c in zip(users, clients):
            self.assertEqual(c.status, 200, "user %d" % u)
            c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 5,
                       "a position block for user %d" % u)
            self.assertPosition(split_replay(c)[1]["id"], self.tip(), "user %d" % u)
        mine = [self.pub("user:%d" % u, "mine", str(u)) for u in users]
        for u, c, p in zip(users, clients, mine):
            self.wait_event_id(c, p)
            self.assertEqual(data_events(c), [("mine", p, str(u))], "user %d" % u)

    def test_live_publish_with_own_id_then_position_restored(self):
        c = self.open(42)
        self.wait_subscribed("sse:user:42")
        p1 = self.pub("user:42", "h", "1")
        self.wait_event_id(c, p1)
        self.redis.publish("sse:user:42", {"event": "live", "data": "L", "id": "own-7"})
        c.wait_for_event(lambda e: e["event"] == "live", 5, "live event")
        c.wait_for(lambda cl: is_position_block(cl.blocks[-1])
                   and same_position(cl.blocks[-1]["id"], p1),
                   5, "a position block restoring %s after the live event" % p1)
        ev = [e for e in c.snapshot() if e["event"] == "live"][0]
        self.assertEqual(ev["id"], "own-7", "the live event carries its own id")
        with c._cond:
            raw = bytes(c.raw)
        self.assertRegex(raw, re.escape(b"event: live\nid: own-7\ndata: L\n\n"
                                        b"event: ssegw-position\nid: ") +
                         re.escape(".".join(p1.split(".")[:2]).encode()) + rb"\.[0-9]+\ndata:\n\n",
                         "the restoring block follows the live event immediately")
        browser_id = c.parser.last_event_id
        self.assertPosition(browser_id, p1, "EventSource's lastEventId after the restore block")
        c.close()
        p2 = self.pub("user:42", "h", "2")
        self.redis.publish("sse:user:42", {"event": "lost-live", "data": "x", "id": "own-8"})
        p3 = self.pub("user:42", "h", "3", via="http")
        again = self.open(42, last_event_id=browser_id)
        replay, pos, _ = split_replay(again)
        self.assertEqual([(e["event"], e["id"], e["data"]) for e in replay],
                         [("h", p2, "2"), ("h", p3, "3")],
                         "the history events after the restored position, once; live-only "
                         "events are never replayed")
        self.assertPosition(pos["id"], p3)
        self.assertFalse([e for e in again.snapshot() if e["event"] == TRUNCATED])

    # ------------------------------------------------------------------ seam under load
    def test_seam_reconnects_while_publishing(self):
        """A publisher calls FCALL continuously (2,000 events) while the client disconnects
        and reconnects 20 times with its last id: the concatenation equals the published
        list exactly (no gap, no duplicate at any seam)."""
        total, reconnects = 2000, 20
        rnd = random.Random(11)
        m0 = self.metric_values()
        c = self.open(42)
        self.wait_subscribed("sse:user:42")
        published = []
        errors = []
        done = threading.Event()

        def publisher():
            try:
                with self.redis.client(timeout=10) as rc:
                    for n in range(total):
                        pos = fcall_publish(rc, "user:42", {"event": "s", "data": str(n)})
                        published.append(("s", pos, str(n)))
                        if n % 10 == 9:
                            time.sleep(0.02)     # ~2,000 events over ~4-5 s
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                done.set()

        t = threading.Thread(target=publisher, daemon=True)
        t.start()
        received, conns, replays = [], [c], []
        last = committed_id(c, "")
        for i in range(reconnects):
            time.sleep(rnd.uniform(0.05, 0.2))
            conns[-1].close()
            received.extend(data_events(conns[-1]))
            last = committed_id(conns[-1], last)
            time.sleep(rnd.uniform(0.0, 0.06))     # away long enough to miss some events
            if i % 2:
                nxt = self.open(42, query=[("lastEventId", last)], wait_position=False)
            else:
                nxt = self.open(42, last_event_id=last, wait_position=False)
            conns.append(nxt)
        self.assertTrue(done.wait(30), "publisher did not finish")
        t.join(5)
        self.assertEqual(errors, [])
        final = conns[-1]
        final.wait_for(lambda cl: any(e["id"] == published[-1][1] for e in cl.events), 15,
                       "the last published event on the final stream")
        received.extend(data_events(final))
        for conn in conns[1:]:
            replays.append(len(split_replay(conn)[0]))
        truncs = [e for e in received if e[0] == TRUNCATED]
        self.assertEqual(truncs, [], "no history-truncated on a 1000-deep history")
        self.assertEqual(received, published, diff_summary(published, received))
        # the seams were really exercised: some reconnections had events to replay
        self.assertGreaterEqual(sum(1 for r in replays if r > 0), reconnects // 4,
                                "replayed per reconnection: %s" % replays)
        m1 = self.metric_values()
        self.assertEqual(m1["resumes_total"] - m0["resumes_total"], reconnects)
        self.assertEqual(m1["resume_replayed_events_total"] - m0["resume_replayed_events_total"],
                         sum(replays))
        print("\n[history] seam: %d events, %d reconnects, replayed per reconnect %s"
              % (total, reconnects, replays), flush=True)

    def test_pubsub_link_cut_under_load(self):
        """CLIENT KILL TYPE pubsub 10 times while a publisher keeps calling sse_publish:
        three connected clients (never reconnecting) get every history event of their
        channels exactly once, in order (the gateway catches up from history)."""
        kills, min_events, max_events = 10, 3000, 9000
        specs = [("c1", ["ta"]), ("c2", ["ta", "tb"]), ("c3", [])]
        chans = {u: {"user:" + u, "broadcast"} | {"topic:" + t for t in ts} for u, ts in specs}
        clients = {u: self.open(u, topics=ts) for u, ts in specs}
        self.wait_subscribed("sse:user:c1", "sse:user:c2", "sse:user:c3", "sse:topic:ta",
                             "sse:topic:tb", "sse:broadcast")
        targets = ["user:c1", "user:c2", "user:c3", "user:other", "topic:ta", "topic:tb",
                   "topic:tc", "broadcast"]
        published, errors = [], []
        kills_done = threading.Event()
        pub_done = threading.Event()

        def publisher():
            rnd = random.Random(5)
            try:
                with self.redis.client(timeout=10) as rc:
                    n = 0
                    while n < max_events and not (kills_done.is_set() and n >= min_events):
                        ch = rnd.choice(targets)
                        pos = fcall_publish(rc, ch, {"event": "k", "data": "%s#%d" % (ch, n)})
                        published.append((pos, ch, "k", "%s#%d" % (ch, n)))
                        n += 1
                        if n % 10 == 0:
                            time.sleep(0.015)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                pub_done.set()

        t = threading.Thread(target=publisher, daemon=True)
        t.start()
        m0 = self.gw.metrics()
        reconnects = m0.get("ssegw_redis_reconnects_total")
        caught0 = m0.get("ssegw_history_caught_up_events_total")
        rnd = random.Random(3)
        killed = []
        try:
            for k in range(kills):
                time.sleep(rnd.uniform(0.1, 0.4))
                n = int(self.redis.cli("CLIENT", "KILL", "TYPE", "pubsub"))
                killed.append(n)
                wait_until(lambda: self.gw.metrics().get("ssegw_redis_reconnects_total")
                           > reconnects, 10, message="gateway did not reconnect after kill %d"
                           % (k + 1))
                reconnects = self.gw.metrics().get("ssegw_redis_reconnects_total")
                wait_until(lambda: self.gw.readyz() == 200, 10)
        finally:
            kills_done.set()
        self.assertTrue(pub_done.wait(60), "publisher did not finish")
        t.join(5)
        self.assertEqual(errors, [])
        self.assertTrue(all(n >= 1 for n in killed), "CLIENT KILL killed %s" % killed)
        self.published = published
        failures = []
        for u, c in clients.items():
            expected = self.expected_for(chans[u])
            try:
                c.wait_for(lambda cl: any(e["id"] == expected[-1][1] for e in cl.events), 20,
                           "the last event of %s" % u)
            except AssertionError as exc:
                failures.append(str(exc)[:300])
            got = [x for x in data_events(c)]
            self.assertFalse(c.closed.is_set(), "%s: the stream must stay open" % u)
            if got != expected:
                failures.append("%s (%s): %s" % (u, sorted(chans[u]),
                                                 diff_summary(expected, got)))
        m1 = self.gw.metrics()
        caught = m1.get("ssegw_history_caught_up_events_total") - caught0
        print("\n[history] pubsub cut: %d kills, %d events published, caught up from history "
              "%d, per client %s" % (len(killed), len(published), caught,
                                     {u: len(c.events) for u, c in clients.items()}),
              flush=True)
        if failures:
            self.fail("after %d pub/sub link cuts, %d events published:\n  %s"
                      % (len(killed), len(published), "\n  ".join(failures)))


class HistoryTruncationTest(HistoryFixture):
    HISTORY = {"max_len": 3}

    def test_trimmed_history_notice_then_what_is_left(self):
        c = self.open(42, topics=["a"])
        self.wait_subscribed("sse:user:42", "sse:topic:a")
        self.pub("user:42", "e", "start")
        c.wait_for_events(1)
        last = committed_id(c, "")
        c.close()
        m0 = self.metric_values()
        for n in range(10):
            self.pub("user:42", "e", str(n), via="http" if n % 3 == 0 else "fcall")
            if n in (4, 8):
                self.pub("topic:a", "t", "a%d" % n)
        again = self.open(42, topics=["a"], last_event_id=last)
        replay, pos, _ = split_replay(again)
        got = [(e["event"], e["id"], e["data"]) for e in replay]
        self.assertTrue(got, "nothing before the position block: %r" % bytes(again.raw))
        self.assertEqual(got[0][0], TRUNCATED, "the notice comes first: %s" % got)
        self.assertEqual(json.loads(got[0][2]), {"reason": "trimmed", "channels": ["user:42"]},
                         "names the trimmed channel only (topic:a kept both its events)")
        self.assertIsNone(got[0][1], "the notice carries no id")
        user_left = [x for x in self.expected_for({"user:42"}, after=last)][-3:]
        expected = sorted(user_left + self.expected_for({"topic:a"}, after=last),
                          key=lambda x: position_seq(x[1]))
        self.assertEqual(got[1:], expected, diff_summary(expected, got[1:]))
        self.assertEqual([x[2] for x in user_left], ["7", "8", "9"])
        self.assertPosition(pos["id"], self.tip())
        self.assert_metric_deltas(m0, resumes_total=1, resume_truncated_total=1,
                                  resume_unknown_position_total=0,
                                  resume_replayed_events_total=len(expected))
        # live afterwards
        self.wait_subscribed("sse:user:42")
        p = self.pub("user:42", "e", "live")
        self.wait_event_id(again, p)
        # resuming from a position still covered: no notice
        r = self.open(42, topics=["a"], last_event_id=self.published[-3][0])
        replay, _, _ = split_replay(r)
        self.assertEqual([(e["event"], e["id"], e["data"]) for e in replay],
                         self.expected_for({"user:42", "topic:a"}, after=self.published[-3][0]))


class RedisDataLossTest(HistoryFixture):
    def test_events_on_a_redis_restarted_empty_reach_open_streams(self):
        """Redis comes back without its data (no persistence) while a gateway is away (here:
        stopped with SIGSTOP, so the order is certain): the position it routed up to names an
        epoch the new Redis never had. Events published on the new Redis before that gateway
        caught up reach its open stream once each, in order, then live ones; they must not be
        taken for 'already routed' because they sit below the new Redis's tip."""
        other = self.start_gateway(self.config(), redis=self.redis, threads=1)
        c = self.open("d1", topics=["dl"])
        self.wait_subscribed("sse:topic:dl")
        self.wait_event_id(c, self.pub("topic:dl", "before", "0"))
        reconnects = self.gw.metrics().get("ssegw_redis_reconnects_total")
        os.kill(self.gw.proc.pid, signal.SIGSTOP)
        resumed = [False]

        def resume():
            if not resumed[0]:
                resumed[0] = True
                os.kill(self.gw.proc.pid, signal.SIGCONT)
        self.addCleanup(resume)
        self.redis.kill()
        self.redis.proc = None
        self.redis.start(timeout=15)           # the fixture's Redis keeps nothing on disk
        self.assertEqual(self.redis.cli("DBSIZE"), 0)
        wait_until(lambda: other.readyz() == 200, 15, message=lambda: other.log_tail(2000))
        for k in range(3):
            self.pub("topic:dl", "during", str(k), via="http", gw=other)
        resume()
        wait_until(lambda: self.gw.metrics().get("ssegw_redis_reconnects_total") > reconnects,
                   15, message=lambda: self.gw.log_tail(2000))
        wait_until(lambda: self.gw.readyz() == 200, 15, message=lambda: self.gw.log_tail(2000))
        self.wait_subscribed("sse:topic:dl")
        last = self.pub("topic:dl", "after", "4", via="http", gw=other)
        try:
            self.wait_event_id(c, last, timeout=10)
        except AssertionError:
            pass                               # the comparison below says what is missing
        expected = self.expected_for({"topic:dl", "user:d1", "broadcast"})
        got = data_events(c)
        self.assertEqual(got, expected, diff_summary(expected, got))
        self.assertFalse(c.closed.is_set())


# ============================================================================ standalone

class StandaloneHistoryTest(FailureAwareMixin, PositionAsserts, GatewayTestCase):
    """--redis none: the same semantics with in-memory history, published by POST /publish."""

    def setUp(self):
        super().setUp()
        self.gw = self.start_gateway({"sse": {"heartbeat_seconds": HEARTBEAT},
                                      "history": {"enabled": True, "max_len": 3,
                                                  "ttl_seconds": 600}},
                                     redis=None, threads=2)
        self.published = []

    def pub(self, channel, event, data):
        status, reply = self.gw.publish({"channel": channel, "event": event, "data": data})
        self.assertEqual(status, 202, "POST /publish answered %s %r" % (status, reply))
        self.assertIsNotNone(parse_position(reply.get("id")), reply)
        self.published.append((reply["id"], channel, event, data))
        return reply["id"]

    def open(self, user=42, topics=(), last_event_id=None):
        c = SseClient(self.gw.port, user=user, topics=topics, last_event_id=last_event_id,
                      connect=False)
        self.addCleanup(c.close)
        if last_event_id:
            c.parser.last_event_id = last_event_id
        c.connect()
        self.assertEqual(c.status, 200, "status %s body %r" % (c.status, c.body))
        c.wait_for(lambda cl: split_replay(cl)[1] is not None, 5, "position block")
        return c

    def after(self, channels, pos):
        return [(ev, p, d) for p, ch, ev, d in self.published
                if ch in channels and position_seq(p) > position_seq(pos)]

    def test_standalone_replay_truncation_and_unknown(self):
        m = self.gw.metrics()
        m0 = {k: m.get("ssegw_" + k) for k in ("resumes_total", "resume_replayed_events_total",
                                               "resume_truncated_total",
                                               "resume_unknown_position_total")}
        mine = {"user:42", "topic:a", "broadcast"}
        c = self.open(42, topics=["a"])
        p0 = self.pub("user:42", "e", "0")
        c.wait_for(lambda cl: any(e["id"] == p0 for e in cl.events), 5, "live event")
        seqs = [position_seq(p0)]
        last = committed_id(c, "")
        self.assertEqual(last, p0)
        c.close()
        # replay
        self.pub("topic:a", "e", "1")
        self.pub("user:43", "e", "x")
        self.pub("broadcast", "e", "2")
        seqs += [position_seq(p) for p, _, _, _ in self.published[1:]]
        self.assertEqual(seqs, sorted(set(seqs)), "increasing positions")
        r = self.open(42, topics=["a"], last_event_id=last)
        replay, pos, _ = split_replay(r)
        self.assertEqual([(e["event"], e["id"], e["data"]) for e in replay],
                         self.after(mine, last))
        self.assertPosition(pos["id"], self.published[-1][0])
        p = self.pub("user:42", "e", "live")
        r.wait_for(lambda cl: any(e["id"] == p for e in cl.events), 5, "live after replay")
        self.assertEqual(data_events(r), self.after(mine, last))
        last = committed_id(r, "")
        r.close()
        # truncation: 10 on the user channel while away, max_len 3
        for n in range(10):
            self.pub("user:42", "e", "u%d" % n)
        t = self.open(42, topics=["a"], last_event_id=last)
        replay, pos, _ = split_replay(t)
        got = [(e["event"], e["id"], e["data"]) for e in replay]
        self.assertTrue(got and got[0][0] == TRUNCATED, "notice first: %s" % got)
        self.assertEqual(json.loads(got[0][2]), {"reason": "trimmed", "channels": ["user:42"]})
        self.assertEqual([x[2] for x in got[1:]], ["u7", "u8", "u9"])
        self.assertEqual(got[1:], self.after({"user:42"}, last)[-3:])
        self.assertPosition(pos["id"], self.published[-1][0])
        # unknown positions
        epoch, seq, secs = parse_position(self.published[-1][0])
        for lid in ("junk", "%s.%d.%d" % (epoch, seq + 50, secs),
                    "%s.%d.%d" % (("1" if epoch[0] != "1" else "2") + epoch[1:], seq, secs)):
            u = self.open(42, last_event_id=lid)
            replay, pos, _ = split_replay(u)
            self.assertEqual([(e["event"], json.loads(e["data"])) for e in replay],
                             [(TRUNCATED, {"reason": "unknown-position"})], lid)
            self.assertPosition(pos["id"], self.published[-1][0])
            u.close()
        m = self.gw.metrics()
        deltas = {k: m.get("ssegw_" + k) - v for k, v in m0.items()}
        self.assertEqual(deltas, {"resumes_total": 5.0, "resume_replayed_events_total": 5.0,
                                  "resume_truncated_total": 4.0,
                                  "resume_unknown_position_total": 3.0})


if __name__ == "__main__":
    unittest.main()

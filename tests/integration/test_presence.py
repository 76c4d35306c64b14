"""Presence (issue 13): GET /presence counted across instances sharing one Redis, the
`<prefix>presence` stream of online/offline transitions, the lifecycle stream, and the README's
presence snippets as written. Cluster mode is in test_presence_cluster.py.

  CountsTest          three gateways, one Redis: counts and instances within 2 s of each change
  DeadInstanceTest    kill -9 of an instance: its streams stop counting at its records' TTL
                      (3 s here; the default's 30 s bound is checked by the unit tests), and its
                      users go offline once, swept by a live instance; a Redis that restarts
                      empty gets every live instance's counts back
  TransitionsTest     one online per user however many instances race, offline only after the
                      grace, none when the user comes back within it
  LifecycleTest       one entry per stream opened and closed, with topics, reason and duration
  StandaloneTest      no Redis: this instance's own counts; presence disabled: 409; bad queries
  ReadmePresenceTest  the README's curl and redis-cli lines, run as written"""

import json
import os
import subprocess
import threading
import time
import unittest

from ssegw_testlib import REPO_ROOT, GatewayTestCase, http_request, wait_until

# Short bounds so the tests take seconds; the formulas are the same as with the defaults.
FAST = {"instance_ttl_seconds": 3, "heartbeat_ms": 300, "flush_ms": 100,
        "offline_grace_seconds": 1}


def config(presence=None, **extra):
    cfg = {"auth": {"mode": "none"}, "history": {"enabled": False},
           "presence": dict(presence or {})}
    cfg.update(extra)
    return cfg


def presence(gw, *users, key=None):
    """GET /presence for `users`: {user: (connections, instances)}."""
    q = "&".join("user=%s" % u for u in users)
    headers = {"Authorization": "Bearer " + key} if key else None
    status, _, body = http_request(gw.admin_port, "GET", "/presence?" + q, headers=headers)
    if status != 200:
        raise AssertionError("GET /presence answered %s %r" % (status, body))
    doc = json.loads(body)
    return {u: (v["connections"], v["instances"]) for u, v in doc["users"].items()}


def transitions(redis, key="sse:presence"):
    """(type, user) of every entry of the presence stream, in order."""
    out = []
    for _id, fields in redis.cli("XRANGE", key, "-", "+"):
        f = dict(zip(fields[::2], fields[1::2]))
        out.append((f["type"], f["user"]))
    return out


def opened(client):
    client.wait_for_raw(lambda raw: b": connected" in raw, 5)
    return client


class PresenceCase(GatewayTestCase):

    def expect(self, gw, user, counts, within, since=None, key=None):
        """GET /presence on `gw` shows `counts` for `user` within `within` s of `since`."""
        since = since or time.monotonic()
        seen = []

        def ok():
            seen.append(presence(gw, user, key=key)[user])
            return seen[-1] == counts
        wait_until(ok, max(0.05, since + within - time.monotonic()), interval=0.05,
                   message=lambda: "presence of %s: %s, expected %s within %.1f s"
                   % (user, seen[-1:], counts, within))
        return time.monotonic() - since


class CountsTest(PresenceCase):

    def test_counts_across_three_instances_within_two_seconds(self):
        redis = self.start_redis()
        gws = [self.start_gateway(config(), redis=redis) for _ in range(3)]  # default timing
        a = [opened(self.sse(gws[0].port, user="42")) for _ in range(2)]
        t = time.monotonic()
        b = opened(self.sse(gws[1].port, user="42"))
        self.sse(gws[1].port, user="7")
        for gw in gws:
            self.expect(gw, "42", (3, 2), 2.0, since=t)
        self.assertEqual(presence(gws[2], "42", "7", "nobody"),
                         {"42": (3, 2), "7": (1, 1), "nobody": (0, 0)})
        t = time.monotonic()
        b.close()
        self.expect(gws[2], "42", (2, 1), 2.0, since=t)
        t = time.monotonic()
        for c in a:
            c.close()
        self.expect(gws[1], "42", (0, 0), 2.0, since=t)
        m = gws[0].metrics()
        self.assertGreaterEqual(m.get("ssegw_presence_batches_total"), 2)
        self.assertGreaterEqual(m.get("ssegw_presence_writes_total"), 2)
        self.assertEqual(m.get("ssegw_presence_errors_total", op="update"), 0)
        self.assertEqual(m.get("ssegw_presence_count_underflows_total"), 0)

    def test_a_burst_is_one_report_per_shard_not_one_call_per_connection(self):
        redis = self.start_redis()
        gw = self.start_gateway(config({"flush_ms": 500, "heartbeat_ms": 5000}), redis=redis,
                                threads=1)
        before = gw.metrics().get("ssegw_presence_reports_total")
        t0 = time.monotonic()
        clients = [self.sse(gw.port, user="u%d" % i) for i in range(40)]
        for c in clients:
            opened(c)
        burst = time.monotonic() - t0
        self.expect(gw, "u39", (1, 1), 2.0)
        reports = gw.metrics().get("ssegw_presence_reports_total") - before
        # One report per flush interval the burst spanned (plus the one it started in), not
        # one per connection.
        self.assertLessEqual(reports, int(burst / 0.5) + 2, "burst of %.2f s" % burst)
        self.assertLess(reports, 40)
        self.assertEqual(presence(gw, *["u%d" % i for i in range(40)]),
                         {"u%d" % i: (1, 1) for i in range(40)})


class DeadInstanceTest(PresenceCase):

    def test_killed_instance_stops_counting_at_its_ttl_and_goes_offline_once(self):
        redis = self.start_redis()
        doomed = self.start_gateway(config(FAST), redis=redis)
        live = self.start_gateway(config(FAST), redis=redis)
        for _ in range(2):
            opened(self.sse(doomed.port, user="k"))
        opened(self.sse(live.port, user="stays"))
        self.expect(live, "k", (2, 1), 2.0)
        doomed.kill()
        killed = time.monotonic()
        # Nothing cleaned up: the records count until their deadline (last heartbeat + TTL).
        self.assertEqual(presence(live, "k")["k"], (2, 1))
        took = self.expect(live, "k", (0, 0), FAST["instance_ttl_seconds"] + 1.0, since=killed)
        self.assertGreater(took, FAST["instance_ttl_seconds"] - 0.6)
        # The live instance's heartbeat sweeps it and writes the offline, once.
        # TTL, the sweep (a heartbeat), the grace (it might only have lost Redis), a heartbeat.
        wait_until(lambda: ("offline", "k") in transitions(redis),
                   FAST["instance_ttl_seconds"] + FAST["offline_grace_seconds"] + 2.0
                   - (time.monotonic() - killed),
                   message=lambda: "no offline for k: %s" % transitions(redis))
        time.sleep(FAST["heartbeat_ms"] / 1000 * 3)
        self.assertEqual(transitions(redis).count(("offline", "k")), 1)
        self.assertEqual(live.metrics().get("ssegw_presence_instances_swept_total"), 1)
        self.assertEqual(presence(live, "stays")["stays"], (1, 1))
        self.assertNotIn(("offline", "stays"), transitions(redis))

    def test_sigterm_leaves_at_once_not_at_the_ttl(self):
        # The default 20 s TTL: a stopping instance must not count its users until then (a
        # rolling deploy would count every moved user twice for that long).
        # A 5 s flush interval on the leaving instance: the drain's closings are still in its
        # shard when it exits, so only its leave call can clear them.
        redis = self.start_redis()
        leaving = self.start_gateway(config({"flush_ms": 5000}), redis=redis)
        staying = self.start_gateway(config(), redis=redis)
        opened(self.sse(leaving.port, user="d"))
        self.expect(staying, "d", (1, 1), 6.0)
        leaving.stop()  # SIGTERM: drain (1 s here), then exit 0
        self.expect(staying, "d", (0, 0), 0.5)

    def test_redis_restarted_empty_gets_the_counts_back(self):
        # 300 users: the full report goes as two calls (250 users each at most), the reset first.
        redis = self.start_redis()
        gw = self.start_gateway(config(FAST), redis=redis)
        users = ["r%d" % i for i in range(300)]
        for u in users:
            self.sse(gw.port, user=u, keep_raw=False)
        everyone = {u: (1, 1) for u in users}
        wait_until(lambda: presence(gw, *users) == everyone, 10)
        redis.restart()  # no persistence: functions and keys are gone
        wait_until(lambda: presence(gw, *users) == everyone, 8)
        self.assertGreaterEqual(gw.metrics().get("ssegw_presence_resyncs_total"), 2)
        wait_until(lambda: sorted(transitions(redis)) == sorted(("online", u) for u in users), 3)


class TransitionsTest(PresenceCase):

    def test_instances_racing_write_one_online_and_one_offline_per_user(self):
        redis = self.start_redis()
        gws = [self.start_gateway(config(FAST), redis=redis) for _ in range(2)]
        users = ["race%d" % i for i in range(30)]
        clients = []
        lock = threading.Lock()

        def connect(gw, user):
            c = self.sse(gw.port, user=user)
            with lock:
                clients.append(c)
        threads = [threading.Thread(target=connect, args=(gw, u)) for u in users for gw in gws]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for c in clients:
            opened(c)
        for u in users:
            self.expect(gws[0], u, (2, 2), 3.0)
        self.assertEqual(sorted(transitions(redis)), sorted(("online", u) for u in users))
        closers = [threading.Thread(target=c.close) for c in clients]
        for t in closers:
            t.start()
        for t in closers:
            t.join(10)
        wait_until(lambda: len(transitions(redis)) == 2 * len(users), 6,
                   message=lambda: "transitions: %s" % transitions(redis))
        time.sleep(FAST["heartbeat_ms"] / 1000 * 3)
        entries = transitions(redis)
        self.assertEqual(sorted(entries),
                         sorted([("online", u) for u in users] + [("offline", u) for u in users]))
        written = sum(g.metrics().get("ssegw_presence_transitions_total", type="online")
                      for g in gws)
        self.assertEqual(written, len(users))

    def test_offline_after_the_grace_and_not_when_back_within_it(self):
        redis = self.start_redis()
        grace = 2
        cfg = config(dict(FAST, offline_grace_seconds=grace))
        gws = [self.start_gateway(cfg, redis=redis) for _ in range(2)]
        c = opened(self.sse(gws[0].port, user="g"))
        wait_until(lambda: transitions(redis) == [("online", "g")], 2)
        # A reload: closed here, back on the other instance within the grace.
        c.close()
        c = opened(self.sse(gws[1].port, user="g"))
        time.sleep(grace + 1.0)
        self.assertEqual(transitions(redis), [("online", "g")])
        # Gone for good: offline after the grace (not before), once.
        c.close()
        closed = time.monotonic()
        self.expect(gws[0], "g", (0, 0), 2.0)
        wait_until(lambda: ("offline", "g") in transitions(redis), grace + 2.0,
                   message=lambda: "no offline: %s" % transitions(redis))
        self.assertGreaterEqual(time.monotonic() - closed, grace - 0.1)
        self.assertEqual(transitions(redis), [("online", "g"), ("offline", "g")])
        # The entry's fields, as the contract gives them.
        _id, fields = redis.cli("XRANGE", "sse:presence", "-", "+")[-1]
        f = dict(zip(fields[::2], fields[1::2]))
        self.assertEqual(set(f), {"type", "user", "at"})
        self.assertLess(abs(int(f["at"]) / 1000 - time.time()), 10)


class LifecycleTest(PresenceCase):

    def test_one_entry_per_stream_opened_and_closed(self):
        redis = self.start_redis()
        gw = self.start_gateway(config(dict(FAST, lifecycle_stream=True)), redis=redis)
        c = opened(self.sse(gw.port, user="l", topics=["news", "prices.eu"]))
        time.sleep(1.1)
        c.close()

        def entries():
            return [dict(zip(f[::2], f[1::2])) for _id, f in
                    redis.cli("XRANGE", "sse:lifecycle", "-", "+")]
        wait_until(lambda: len(entries()) == 2, 3, message=lambda: "entries: %s" % entries())
        o, cl = entries()
        self.assertEqual((o["type"], o["user"], o["topics"]), ("opened", "l", "news,prices.eu"))
        self.assertEqual((cl["type"], cl["reason"]), ("closed", "client_gone"))
        self.assertEqual(o["instance"], cl["instance"])
        self.assertGreaterEqual(int(cl["duration_s"]), 1)
        m = gw.metrics()
        self.assertEqual(m.get("ssegw_lifecycle_entries_total"), 2)
        self.assertEqual(m.get("ssegw_lifecycle_dropped_total"), 0)

    def test_entries_made_while_redis_is_down_are_written_when_it_is_back(self):
        redis = self.start_redis()
        gw = self.start_gateway(config(dict(FAST, lifecycle_stream=True)), redis=redis)
        opened(self.sse(gw.port, user="before")).close()
        wait_until(lambda: gw.metrics().get("ssegw_lifecycle_entries_total") == 2, 3)
        redis.kill()
        wait_until(lambda: http_request(gw.admin_port, "GET", "/readyz")[0] == 503, 5)
        for i in range(3):  # opened and closed while Redis is away: six entries wait
            opened(self.sse(gw.port, user="away%d" % i)).close()
        wait_until(lambda: gw.metrics().get("ssegw_presence_errors_total", op="lifecycle") >= 1,
                   5, message="the gateway never tried to write the entries")
        redis.start()  # empty (no persistence): the functions are installed again

        def users():
            return [dict(zip(f[::2], f[1::2]))["user"] for _id, f in
                    redis.cli("XRANGE", "sse:lifecycle", "-", "+")]
        wait_until(lambda: sorted(users()) == sorted(["away0", "away1", "away2"] * 2), 10,
                   message=lambda: "lifecycle entries: %s" % users())
        m = gw.metrics()
        self.assertEqual(m.get("ssegw_lifecycle_entries_total"), 8)
        self.assertEqual(m.get("ssegw_lifecycle_dropped_total"), 0)

    def test_off_by_default(self):
        redis = self.start_redis()
        gw = self.start_gateway(config(FAST), redis=redis)
        opened(self.sse(gw.port, user="l")).close()
        self.expect(gw, "l", (0, 0), 2.0)
        self.assertEqual(redis.cli("EXISTS", "sse:lifecycle"), 0)
        self.assertFalse(gw.metrics().has("ssegw_lifecycle_entries_total"))


class StandaloneTest(PresenceCase):

    def test_standalone_counts_this_instance(self):
        gw = self.start_gateway(config())
        opened(self.sse(gw.port, user="s"))
        opened(self.sse(gw.port, user="s"))
        self.expect(gw, "s", (2, 1), 2.0)
        self.assertEqual(presence(gw, "s", "t"), {"s": (2, 1), "t": (0, 0)})

    def test_bad_requests_and_disabled(self):
        gw = self.start_gateway(config())
        for q in ("", "?", "?user=", "?users=1", "?user=%zz", "?user=a%00b",
                  "?user=" + "x" * 300):
            status, _, body = http_request(gw.admin_port, "GET", "/presence" + q)
            self.assertEqual(status, 400, q)
            self.assertIn("error", json.loads(body))
        self.assertEqual(http_request(gw.admin_port, "POST", "/presence?user=1", body={})[0],
                         405)
        off = self.start_gateway(config({"enabled": False}))
        status, _, body = http_request(off.admin_port, "GET", "/presence?user=1")
        self.assertEqual(status, 409)
        self.assertIn("presence.enabled", json.loads(body)["error"])

    def test_redis_down_is_503(self):
        redis = self.start_redis()
        gw = self.start_gateway(config(FAST), redis=redis)
        redis.kill()
        wait_until(lambda: http_request(gw.admin_port, "GET", "/presence?user=1")[0] == 503, 5)
        self.assertTrue(gw.running())


def readme_block(heading, lang, nth=0):
    """The nth ```lang block of README.md's "### heading" section, as written."""
    import re
    text = (REPO_ROOT / "README.md").read_text()
    at = text.index("\n### %s\n" % heading)
    end = min(x for x in (text.find("\n## ", at + 1), text.find("\n### ", at + 1)) if x != -1)
    return re.findall(r"^```%s\n(.*?)^```" % lang, text[at:end], re.S | re.M)[nth]


class ReadmePresenceTest(PresenceCase):

    def run_sh(self, snippet, gw, redis):
        script = (snippet.replace("9090", str(gw.admin_port))
                  .replace("redis-cli ", "redis-cli -p %d " % redis.port))
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], timeout=30,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, KEY="readme-key"))
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    def test_readme_snippets(self):
        redis = self.start_redis()
        gws = [self.start_gateway(config(FAST, admin={"api_key": "readme-key"}), redis=redis)
               for _ in range(2)]
        # The consumer group first, as a backend sets it up before users come and go.
        group = readme_block("Online and offline: the presence stream", "sh", 0)
        self.run_sh(group, gws[0], redis)
        opened(self.sse(gws[0].port, user="42"))
        opened(self.sse(gws[1].port, user="42"))
        self.expect(gws[0], "42", (2, 2), 2.0, key="readme-key")
        out = self.run_sh(readme_block("Presence: GET /presence", "sh", 0), gws[1], redis)
        self.assertEqual(json.loads(out),
                         {"users": {"42": {"connections": 2, "instances": 2},
                                    "7": {"connections": 0, "instances": 0}}})
        out = self.run_sh(readme_block("Presence: GET /presence", "sh", 1), gws[1], redis)
        self.assertEqual(out.split(), ["2", "2", "0", "0"])
        for nth in (1, 2):  # XREADGROUP, then XREAD
            out = self.run_sh(readme_block("Online and offline: the presence stream", "sh", nth),
                              gws[0], redis)
            self.assertIn("online", out.split())
            self.assertIn("42", out.split())
        # The Python backend snippet, against the README's example key.
        gw = self.start_gateway(config(FAST, admin={"api_key": "change-me"}), redis=redis)
        scope = {}
        exec(readme_block("Presence: GET /presence", "python").replace(
            "9090", str(gw.admin_port)), scope)
        self.assertEqual(scope["online"](["42", "7"]), {"42": True, "7": False})


if __name__ == "__main__":
    unittest.main()

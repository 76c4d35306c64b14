#!/usr/bin/env python3
"""bench/presence_redis_cost.py: Redis CPU per presence change when nothing coalesces.

bench/compare's churn scenario opens and closes each stream within milliseconds, so a shard's
presence buffer cancels every connect against its disconnect and Redis sees only heartbeats.
This measures the other end: every change reaching Redis. One instance sends FCALL
ssegw_presence_apply with 250 users per call, as the gateway does: every user first goes 0 -> 1
(an `online` entry each), then 1 -> 0 (a due offline each), then the heartbeats that write the
offlines; plus a second instance's plain heartbeats. Redis time from INFO commandstats
(usec per FCALL), divided by the users in each call. Standard library only; starts its own
redis-server on a free loopback port and stops it by its PID.

    bench/presence_redis_cost.py [--users 20000]
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from ssegw_testlib import RedisServer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def library_source():
    src = open(os.path.join(ROOT, "src", "redis", "presence_functions.cpp")).read()
    return src.split('R"LUA(')[1].split(')LUA"')[0]


def fcall_usec(c, command="fcall"):
    info = c.call("INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_%s:" % command):
            f = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            return int(f["calls"]), int(f["usec"])
    return 0, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--per-call", type=int, default=250)
    a = ap.parse_args()
    r = RedisServer()
    r.start()
    try:
        with r.client() as c:
            c.call("FUNCTION", "LOAD", "REPLACE", library_source())

            def apply(instance, pairs, ttl=20000):
                # A 1 s grace: the disconnect phase only schedules the offlines.
                args = ["FCALL", "ssegw_presence_apply", "1", "sse:presence", instance, str(ttl),
                        "1000", "100000", "0"]
                for u, n in pairs:
                    args += [u, str(n)]
                return c.call(*args)

            users = ["user-%d" % i for i in range(a.users)]
            phases = []
            for label, count in (("connect (0 -> 1, online written)", 1),
                                 ("disconnect (1 -> 0, offline due)", 0)):
                calls0, usec0 = fcall_usec(c)
                for i in range(0, len(users), a.per_call):
                    apply("gw-a", [(u, count) for u in users[i:i + a.per_call]])
                calls1, usec1 = fcall_usec(c)
                phases.append((label, usec1 - usec0, calls1 - calls0 - 0, a.users))
            # Once the grace has passed, heartbeats write the offlines (250 per call).
            time.sleep(1.2)
            calls0, usec0 = fcall_usec(c)
            n = 0
            while n < a.users:
                got = apply("gw-b", [])
                n += got[2]
                if got[2] == 0:
                    break
            calls1, usec1 = fcall_usec(c)
            phases.append(("heartbeats writing the offlines", usec1 - usec0, calls1 - calls0, n))
            calls0, usec0 = fcall_usec(c)
            for _ in range(1000):
                apply("gw-b", [])
            calls1, usec1 = fcall_usec(c)
            phases.append(("idle heartbeat", usec1 - usec0, calls1 - calls0, 0))
            xlen = c.call("XLEN", "sse:presence")
            # Baseline, same run: one plain XADD per user, the least any stream of presence
            # events written from outside Redis would cost.
            calls0, usec0 = fcall_usec(c, "xadd")
            for i in range(0, len(users), a.per_call):
                c.pipeline([["XADD", "baseline", "MAXLEN", "~", "100000", "*", "type", "online",
                             "user", u, "at", "1"] for u in users[i:i + a.per_call]])
            calls1, usec1 = fcall_usec(c, "xadd")
            baseline = (usec1 - usec0) / max(calls1 - calls0, 1)
        print("| phase | FCALLs | users | Redis µs per call | Redis µs per user | per user / one XADD |")
        print("|---|---|---|---|---|---|")
        for label, usec, calls, nusers in phases:
            per_user = "%.2f" % (usec / nusers) if nusers else "—"
            ratio = "%.1f×" % (usec / nusers / baseline) if nusers else "—"
            print("| %s | %d | %d | %.1f | %s | %s |" % (label, calls, nusers, usec / max(calls, 1),
                                                        per_user, ratio))
        print("| baseline: one plain XADD per user | — | %d | — | %.2f | 1× |" % (a.users, baseline))
        print("\nstream entries written: %d (one online and one offline per user)" % xlen)
    finally:
        r.stop()
        r.cleanup()


if __name__ == "__main__":
    main()

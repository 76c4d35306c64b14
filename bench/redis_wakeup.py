#!/usr/bin/env python3
"""What one PUBLISH costs Redis, and how much of it the subscriber decides.

The issue's target "Redis CPU per unicast delivery <= 0.5x the Node baseline's" is a figure for
Redis, not for the gateway; this measures what a subscriber can change in it. The unicast
publishing stream of bench/compare (PUBLISH sse:user:u<random> at 2,000/s, 64-byte payloads,
from bench/.build/loadgen on core 1, Redis on core 1) goes to a fresh Redis with:

  none      no subscriber: Redis's own cost per PUBLISH (read, execute, reply)
  blocking  one PSUBSCRIBE connection on core 0 that sleeps in recv() between messages, as every
            event-driven server does (the gateway, Node, Nchan, the floor)
  spinning  the same connection never sleeping (non-blocking recv() in a busy loop, burning
            core 0): Redis's write then wakes nobody

and reports Redis's CPU-us per published event (schedstat), median of --reps runs, interleaved.

    bench/redis_wakeup.py [--reps 3] [--rate 2000] [--seconds 5]

Needs bench/.build/loadgen (bench/compare builds it) and redis-server.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(BENCH, ".build", "loadgen")
PORT = 16393


def pin(core):
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


SUBSCRIBER = r"""
import socket, sys, time
spin = sys.argv[2] == "spinning"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$5\r\nsse:*\r\n")
if spin:
    s.setblocking(False)
else:
    s.settimeout(0.5)  # sleeps in poll() until data comes, wakes up to notice the end
end = time.time() + float(sys.argv[3])
got = 0
while time.time() < end:
    try:
        got += len(s.recv(65536))
    except (BlockingIOError, socket.timeout):
        pass
print(got)
"""


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def one_run(mode, rate, seconds):
    redis = subprocess.Popen(pin(1) + ["redis-server", "--port", str(PORT), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sub = None
    try:
        wait_port(PORT)
        if mode != "none":
            sub = subprocess.Popen(pin(0) + [sys.executable, "-c", SUBSCRIBER, str(PORT), mode, str(seconds + 4)],
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)  # subscribed before the first PUBLISH
        out = subprocess.run(pin(1) + [LOADGEN, "--port", "1", "--conns", "0", "--pub", "redis", "--pub-port",
                                       str(PORT), "--pub-cmd", "PUBLISH sse:user:u{r}", "--pub-users", "5000",
                                       "--pub-rate", str(rate), "--duration", str(seconds), "--redis-pid",
                                       str(redis.pid)], capture_output=True, text=True, timeout=60, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        receivers = r["pub_receivers"]
        expected_receivers = 0 if mode == "none" else r["published"]
        if r["pub_errors"] or receivers != expected_receivers:
            raise RuntimeError(f"{mode}: {r['pub_errors']} errors, {receivers} receivers for {r['published']}")
        return r["redis_cpu_s"] * 1e6 / r["published"]
    finally:
        if sub:
            sub.kill()
            sub.wait()
        redis.terminate()
        redis.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    if not os.path.exists(LOADGEN):
        sys.exit("redis_wakeup: bench/.build/loadgen is missing (run bench/compare once, or build bench/)")
    modes = ["none", "blocking", "spinning"]
    got = {m: [] for m in modes}
    for rep in range(a.reps):
        for m in modes:
            got[m].append(one_run(m, a.rate, a.seconds))
            print(f"rep {rep + 1}: {m:9s} {got[m][-1]:6.2f} Redis CPU-us per PUBLISH", file=sys.stderr)
    print(f"| subscriber | Redis CPU-µs per PUBLISH (median of {a.reps}; runs) |")
    print("|---|---|")
    for m in modes:
        runs = ", ".join(f"{x:.1f}" for x in got[m])
        print(f"| {m} | {statistics.median(got[m]):.1f} ({runs}) |")


if __name__ == "__main__":
    main()

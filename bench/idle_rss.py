#!/usr/bin/env python3
"""Idle memory per SSE connection: starts a gateway (standalone, or with its own redis-server
with --redis), opens N idle streams (each reads its response head, then sits), and reports the
gateway's RSS growth per connection.

    bench/idle_rss.py [N] [THREADS] [PRESENCE] [--redis] [--burst] [--settle S] [--hold S]
        (defaults: 10000 connections, 2 threads, presence on, standalone, 1 s settle)

PRESENCE off sets presence.enabled false (each stream is a different user here, so presence's
per-user count is one map entry per stream).

--burst connects every stream before sending any request, so every handshake is in flight at
once (a reconnect storm) instead of one after the other.

--redis starts a throwaway redis-server on a free loopback port and points the gateway at it
(per-channel SUBSCRIBE, history on): the subscriber's per-channel state and the new-stream
history read are then part of the figure, as in a real deployment.

--hold keeps the streams open that many seconds after the figure is printed (with the
gateway's pid), for a look from outside while they are held: a heap profiler's snapshot (run the
gateway under heaptrack's preload library through SSEGW_BINARY and kill -9 it meanwhile: what is
still allocated is what the held streams use), /proc/PID/smaps.

The process-wide open-file limit here is 20,000, so N must stay below ~19,500 (the client side
of each connection lives in this process)."""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("SSEGW_BINARY", os.path.join(ROOT, "build", "sse-gateway"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("n", nargs="?", type=int, default=10000, help="idle streams to open")
    p.add_argument("threads", nargs="?", type=int, default=2, help="gateway shard threads")
    p.add_argument("presence", nargs="?", default="on", choices=["on", "off"],
                   help="presence.enabled")
    p.add_argument("--redis", action="store_true",
                   help="start a redis-server and run the gateway against it")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds to wait after the last stream's head before reading RSS")
    p.add_argument("--burst", action="store_true",
                   help="open every connection first, then send every request: all handshakes "
                        "in flight at once, as in a reconnect storm")
    p.add_argument("--hold", type=float, default=0.0,
                   help="seconds to keep the streams open after printing the figure")
    p.add_argument("--log-level", default="warn", help="the gateway's --log-level")
    return p.parse_args()


def start_redis():
    sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
    from ssegw_testlib import RedisServer  # the tests' throwaway server: temp dir, own group
    return RedisServer().start()


def main():
    args = parse_args()
    n, threads, presence = args.n, args.threads, args.presence != "off"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    redis = start_redis() if args.redis else None
    port, admin = free_port(), free_port()
    cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    cfg.write('{"auth":{"mode":"none"},"redis":{"url":"%s"},"sse":{"heartbeat_seconds":3600},'
              '"server":{"max_connections":200000,"max_connections_per_user":0},'
              '"presence":{"enabled":%s}}'
              % (redis.url if redis else "none", "true" if presence else "false"))
    cfg.close()
    gw = subprocess.Popen([BINARY, "--config", cfg.name, "--port", str(port), "--admin-port",
                           str(admin), "--threads", str(threads), "--log-level", args.log_level],
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", admin), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        # Warm up: one stream opened and closed, so one-time allocations are in the baseline.
        warm = socket.create_connection(("127.0.0.1", port))
        warm.sendall(b"GET /events?user=warm HTTP/1.1\r\nHost: x\r\n\r\n")
        warm.recv(4096)
        warm.close()
        time.sleep(0.5)
        before = rss_kib(gw.pid)
        socks = []
        t0 = time.time()
        def request(i):
            return b"GET /events?user=u%d&topic=t%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i, i % 10)
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            if not args.burst:
                s.sendall(request(i))
            socks.append(s)
        if args.burst:
            for i, s in enumerate(socks):
                s.sendall(request(i))
        for s in socks:  # every stream answered: its head and first bytes arrived
            s.settimeout(10)
            if not s.recv(4096).startswith(b"HTTP/1.1 200"):
                raise RuntimeError("stream refused")
        opened = time.time() - t0
        time.sleep(args.settle)
        after = rss_kib(gw.pid)
        per = (after - before) * 1024.0 / n
        print("idle RSS: %d connections, %d shard threads, presence %s, %s: gateway RSS %d -> %d "
              "KiB, %.0f bytes (%.2f KiB) per connection; opened in %.1f s"
              % (n, threads, "on" if presence else "off", "redis" if redis else "standalone",
                 before, after, per, per / 1024.0, opened))
        if args.hold > 0:
            print("holding the streams for %.0f s: gateway pid %d" % (args.hold, gw.pid),
                  flush=True)
            time.sleep(args.hold)
        for s in socks:
            s.close()
    finally:
        gw.terminate()
        gw.wait(timeout=30)
        os.unlink(cfg.name)
        if redis:
            redis.cleanup()


if __name__ == "__main__":
    main()

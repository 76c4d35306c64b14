#!/usr/bin/env python3
"""bench/redis_wait.py: what `WAIT 1` after each `FCALL sse_publish` costs a publisher that wants
its events to survive a failover (docs/redis-failover.md, README "Operating").

    bench/redis_wait.py [--events 2000] [--reps 3] [--gateway build/sse-gateway]

Starts a primary and a replica (redis-server, loopback, free ports), installs the history
functions by starting the gateway against the primary once, then publishes --events events one
at a time (each waits for its reply, as a request handler would) with plain FCALL and with
FCALL + `WAIT 1 1000`, the two interleaved --reps times. Prints per-event latency (p50/p99, ms)
and the primary's CPU per event (µs, from /proc). Python 3 standard library only.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Resp:
    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=10)
        self.buf = b""

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self.reply()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError("bad reply %r" % line)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ping(port, proc, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit("redis-server exited")
        try:
            if Resp(port).call("PING") == "PONG":
                return
        except OSError:
            time.sleep(0.05)
    sys.exit("redis-server did not answer")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gateway", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "build", "sse-gateway"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ssegw-wait-")
    procs = []
    try:
        primary, replica = free_port(), free_port()
        for port, extra in ((primary, []), (replica, ["--replicaof", HOST, str(primary)])):
            d = os.path.join(tmp, str(port))
            os.makedirs(d)
            p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                                  "--appendonly", "no", "--dir", d, "--repl-diskless-sync-delay",
                                  "0", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            procs.append(p)
            wait_ping(port, p)
        r = Resp(replica)
        t0 = time.time()
        while "master_link_status:up" not in r.call("INFO", "replication"):
            if time.time() - t0 > 30:
                sys.exit("the replica never synced")
            time.sleep(0.1)
        # The gateway installs the history functions at start; its admin port answers when done.
        admin = free_port()
        gw = subprocess.Popen([a.gateway, "--redis", "redis://%s:%d" % (HOST, primary), "--port",
                               str(free_port()), "--admin-port", str(admin), "--threads", "1",
                               "--log-level", "warn"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
        c = Resp(primary)
        t0 = time.time()
        while not c.call("FUNCTION", "LIST", "LIBRARYNAME", "ssegw_v1"):
            if time.time() - t0 > 15:
                sys.exit("the gateway did not install the functions")
            time.sleep(0.1)
        gw.send_signal(signal.SIGKILL)
        gw.wait()

        payload = '{"event":"bench","data":"%s"}' % ("x" * 48)
        results = {"fcall": [], "fcall + WAIT 1": []}
        cpu = {k: [] for k in results}
        for rep in range(a.reps):
            for mode in results:
                lat = []
                c0 = cpu_seconds(procs[0].pid)
                for i in range(a.events):
                    t = time.perf_counter()
                    c.call("FCALL", "sse_publish", "1", "sse:{user:%d}" % (i % 100), payload)
                    if mode != "fcall":
                        if c.call("WAIT", "1", "1000") != 1:
                            sys.exit("WAIT did not reach the replica")
                    lat.append((time.perf_counter() - t) * 1000)
                cpu[mode].append((cpu_seconds(procs[0].pid) - c0) / a.events * 1e6)
                results[mode] += lat
        print("bench/redis_wait.py --events %d --reps %d (primary + replica on loopback, %d cores)"
              % (a.events, a.reps, os.cpu_count()))
        print("| publish | latency p50 (ms) | p99 (ms) | primary CPU-µs per event (median of reps) |")
        print("|---|---|---|---|")
        for mode, lat in results.items():
            lat.sort()
            print("| %s | %.3f | %.3f | %.1f |" % (mode, lat[len(lat) // 2], lat[int(len(lat) * 0.99)],
                                                 statistics.median(cpu[mode])))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Helpers shared by bench/compare, bench/million and bench/cluster_capacity.py (Python 3 standard
library only)."""
import os
import signal
import socket
import subprocess
import sys
import time


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_port(port, timeout=15.0, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


class Proc:
    """A process we started, stopped by its own pid."""

    def __init__(self, argv, logfile, cwd=None, env=None, preexec_fn=None):
        self.log = open(logfile, "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                  start_new_session=True, preexec_fn=preexec_fn)

    @property
    def pid(self):
        return self.p.pid

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, kernel {os.uname().release}"


def highest_passing_rate(probe, start, refine, max_doublings):
    """The highest rate `probe` passes: doubling from `start` until a probe fails, then `refine`
    bisection steps between the last pass and the first failure. probe(rate) -> (result, why):
    why None (passed), "over" (failed: too high a rate) or any other text (the search cannot go
    on, e.g. the load generator's own core saturated). Returns (result of the best passing
    probe, its rate (0: none passed), limit: why the search stopped)."""
    rate = start
    best, best_rate, limit, fail_rate = None, 0, None, None
    for _ in range(max_doublings):
        r, why = probe(rate)
        if why is None:
            best, best_rate = r, rate
            rate *= 2
            continue
        if why == "over":
            fail_rate = rate
        else:
            limit = f"{why} at {rate}/s"
        break
    else:
        limit = f"still fine at {best_rate}/s (search cap)"
    if fail_rate and best_rate:
        lo, hi = best_rate, fail_rate
        for _ in range(refine):
            mid = (lo + hi) // 2
            if mid in (lo, hi):
                break
            r, why = probe(mid)
            if why is None:
                best, lo = r, mid
            elif why == "over":
                hi = mid
            else:
                limit = f"{why} at {mid}/s"
                break
        best_rate = lo
        limit = limit or f"over at {hi}/s"
    elif fail_rate:
        limit = f"over already at the start rate {fail_rate}/s"
    return best, best_rate, limit

#!/usr/bin/env python3
"""bench/cluster_capacity.py: one Redis vs a 3-primary Redis Cluster, same machine, same run
(issue 11 "Measured"; docs/benchmarks.md "Redis Cluster capacity").

    bench/cluster_capacity.py            # full run, ~3 minutes
    bench/cluster_capacity.py --quick    # smoke test, ~1 minute

For each setup (`single`: one redis-server, `redis.mode` single; `cluster`: three primaries made
with `redis-cli --cluster create`, no replicas, `redis.mode: cluster`) one gateway (one thread,
history on) serves --users streams (one per user, u0..). Every event is a unicast history event,
`FCALL sse_publish 1 sse:{user:u<r>} <payload>` for a random user, sent by bench/.build/loadgen
(pipelined; in the cluster one link per primary, each command to the primary owning its key's
slot), and delivered live to that user's stream.

  idle       Redis CPU per node with the streams open and nothing published (cluster bus, crons)
  per node   Redis CPU per event per node (/proc/<pid>/schedstat of each redis-server over the
             publishing window, divided by the events that node received) and gateway CPU per
             delivery, at the same load per node: 1 Redis at R events/s, and both setups at 3R
             (the cluster's nodes then get ~R each; R = node_rate). Redis' CPU per event falls
             as its rate rises (more commands per read), so only equal loads per node compare
  sustained  the highest rate with every event acknowledged and delivered and publish->receive
             p99 <= 100 ms (benchlib.highest_passing_rate: doubling, then bisection)
  resume     a 34-channel stream (user, broadcast, 32 topics; in the cluster spread over all
             primaries) closed, one event published to each topic (POST /publish), reopened with
             Last-Event-ID: time from the request to the 32nd replayed event, --resume-samples
             times, p50/p99

Pinning (taskset, as bench/compare): the gateway on core 0; the Redis nodes and loadgen share
core 1. On a 2-core machine the cluster has no spare cores to run on, so `sustained` cannot show
its parallel speed-up; the report projects it from the per-node CPU per event instead, labelled
as a projection. Writes bench/results/cluster-capacity-<timestamp>.{md,json}. Standard library
only, plus tests/support/ssegw_testlib.py for the Redis processes and the SSE client.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from benchlib import Proc, highest_passing_rate, log, machine, wait_port  # noqa: E402
from ssegw_testlib import (RedisCluster, RedisServer, SseClient, free_port,  # noqa: E402
                           is_position_block, percentile, publish_http)

LOADGEN = os.path.join(BENCH, ".build", "loadgen")
GATEWAY_CORE, AUX_CORE = 0, 1
FULL = dict(users=2000, node_rate=4000, duration=4.0, start_rate=2000, refine=2,
            max_doublings=6, p99_ms=100.0, resume_samples=300, payload=64)
QUICK = dict(FULL, users=500, duration=2.0, refine=1, max_doublings=4, resume_samples=60)
PUBLISH = "FCALL sse_publish 1 sse:{user:u{r}}"
RESUME_TOPICS = ["w%d" % i for i in range(32)]


def pin(core):
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


def pin_pid(pid, core):
    if pin(core):
        subprocess.run(["taskset", "-a", "-pc", str(core), str(pid)], check=True,
                       capture_output=True)


class Stack:
    """The Redis side of one setup plus one gateway in front of it."""

    def __init__(self, mode, run, gateway_bin):
        self.mode, self.run, self.gateway_bin = mode, run, gateway_bin
        self.cluster = None
        self.nodes = []
        self.gw = None
        self.port, self.admin = free_port(), free_port()

    def start(self):
        if self.mode == "cluster":
            self.cluster = RedisCluster(self.run, primaries=3, replicas=0)
            self.cluster.start()
            self.nodes = self.cluster.nodes
            url = self.cluster.url
        else:
            self.nodes = [RedisServer(workdir=self.run).start()]
            url = self.nodes[0].url
        for n in self.nodes:
            pin_pid(n.proc.pid, AUX_CORE)
        with open(os.path.join(BENCH, "gateway", "gateway.json")) as f:
            cfg = json.load(f)
        cfg["redis"].update(url=url, mode=self.mode)
        cfg["presence"] = {"enabled": False}  # only the event path is measured
        path = os.path.join(self.run, "gateway-%s.json" % self.mode)
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.gw = Proc(pin(GATEWAY_CORE) + [self.gateway_bin, "--config", path, "--port",
                                            str(self.port), "--admin-port", str(self.admin),
                                            "--threads", "1", "--log-level", "warn"],
                       os.path.join(self.run, "gateway-%s.log" % self.mode))
        wait_port(self.port, proc=self.gw.p)
        t0 = time.time()
        while time.time() - t0 < 15:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin,
                                            timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the %s gateway never got ready" % self.mode)

    def stop(self):
        if self.gw:
            self.gw.stop()
        for n in self.nodes:
            n.stop()

    def pub_args(self):
        args = ["--pub", "redis", "--pub-port", str(self.nodes[0].port), "--pub-cmd", PUBLISH]
        if self.cluster:
            ranges = ["%d-%d:%d" % (lo, hi, port) for port, _, rs in self.cluster.shards()
                      for lo, hi in rs]
            args += ["--pub-cluster", ",".join(ranges)]
        return args


def loadgen(stack, cfg, rate, duration):
    argv = pin(AUX_CORE) + [
        LOADGEN, "--port", str(stack.port), "--conns", str(cfg["users"]), "--conn-rate", "10000",
        "--path", "/events?user=u{u}", "--pub-users", str(cfg["users"]), "--pub-rate", str(rate),
        "--duration", str(duration), "--settle-max", "3", "--payload", str(cfg["payload"]),
        "--idle-settle", "0.3", "--server-pid", str(stack.gw.pid)] + stack.pub_args()
    for n in stack.nodes:
        argv += ["--redis-pid", str(n.proc.pid)]
    if rate == 0:
        argv[argv.index("--pub") + 1] = "none"
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError("loadgen failed (%d): %s" % (r.returncode, r.stderr.strip()[:500]))
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # Per node: CPU in the publishing window and the events routed to it (by port, in node order).
    sent = {link["port"]: link["sent"] for link in out.get("pub_links", [])}
    out["nodes"] = []
    for n, cpu in zip(stack.nodes, out["redis_cpu_each_s"]):
        events = sent.get(n.port, 0) if rate else 0
        out["nodes"].append(dict(port=n.port, cpu_s=cpu, events=events,
                                 cpu_us_per_event=cpu * 1e6 / events if events else None))
    out["events_per_s"] = out["pub_replies"] / out["window_s"] if out["window_s"] else 0
    out["delivered_pct"] = 100.0 * out["deliveries"] / out["published"] if out["published"] else 0
    out["redis_cpu_us_per_event"] = (sum(out["redis_cpu_each_s"]) * 1e6 / out["published"]
                                     if out["published"] else None)
    return out


def sustained(stack, cfg):
    def probe(rate):
        r = loadgen(stack, cfg, rate, cfg["duration"])
        ok = (r["delivered_pct"] >= 99.9 and r["lat_p99_ms"] <= cfg["p99_ms"]
              and not r["pub_errors"] and r["pub_replies"] == r["published"])
        log("  %s %d/s: acked %d of %d, delivered %.1f%%, p99 %.1f ms, redis %.2f s, gateway "
            "%.2f s, loadgen %.2f s of %.1f s -> %s"
            % (stack.mode, rate, r["pub_replies"], r["published"], r["delivered_pct"],
               r["lat_p99_ms"], sum(r["redis_cpu_each_s"]), r["server_cpu_s"],
               r["loadgen_cpu_s"], r["window_s"] + r["settle_s"], "ok" if ok else "over"))
        return r, None if ok else "over"
    best, rate, limit = highest_passing_rate(probe, cfg["start_rate"], cfg["refine"],
                                             cfg["max_doublings"])
    return dict(rate=rate, limit=limit, probe=best)


def resume_latency(stack, samples):
    """ms from the Last-Event-ID request to the 32nd replayed event of a 34-channel stream."""
    def events(c):
        return [e["data"] for e in c.snapshot() if e["event"] != "history-truncated"]

    def stream(last=None):
        c = SseClient(stack.port, user="wide", topics=RESUME_TOPICS, last_event_id=last,
                      timeout=10)
        return c
    c = stream()
    c.wait_for(lambda cl: any(is_position_block(b) for b in cl.blocks), 10, "position")
    out, id_len, truncated = [], 0, 0
    try:
        for i in range(samples):
            last = c.parser.last_event_id
            c.close()
            for tp in RESUME_TOPICS:
                status, body = publish_http(stack.admin, {"channel": "topic:" + tp,
                                                          "data": "%s-%d" % (tp, i)})
                if status != 202:
                    raise RuntimeError("POST /publish: %s %s" % (status, body))
            t0 = time.monotonic()
            c = stream(last)
            c.wait_for(lambda cl: len(events(cl)) >= len(RESUME_TOPICS), 10, "32 missed events")
            out.append((time.monotonic() - t0) * 1000)
            got = sorted(events(c))
            if got != sorted("%s-%d" % (tp, i) for tp in RESUME_TOPICS):
                raise RuntimeError("resume %d replayed %s" % (i, got))
            truncated += "history-truncated" in [e["event"] for e in c.snapshot()]
            id_len = max(id_len, len(c.parser.last_event_id or ""))
    finally:
        c.close()
    out.sort()
    return dict(samples=len(out), p50_ms=percentile(out, 50), p99_ms=percentile(out, 99),
                max_ms=out[-1], id_bytes=id_len, truncated=truncated)


def shards_of_resume_stream(stack):
    if not stack.cluster:
        return 1
    keys = ["sse:{user:wide}", "sse:{broadcast}"] + ["sse:{topic:%s}" % t for t in RESUME_TOPICS]
    return len({stack.cluster.owner(k) for k in keys})


def run_setup(mode, cfg, gateway_bin):
    run = tempfile.mkdtemp(prefix="ssegw-cluster-capacity-%s-" % mode)
    stack = Stack(mode, run, gateway_bin)
    try:
        stack.start()
        log("[%s] idle" % mode)
        idle = loadgen(stack, cfg, 0, cfg["duration"])
        fixed = {}
        for rate in ((cfg["node_rate"], 3 * cfg["node_rate"]) if mode == "single"
                     else (3 * cfg["node_rate"],)):
            log("[%s] fixed rate %d/s" % (mode, rate))
            fixed[rate] = loadgen(stack, cfg, rate, cfg["duration"])
        log("[%s] sustained rate search" % mode)
        cap = sustained(stack, cfg)
        log("[%s] resume latency, %d samples" % (mode, cfg["resume_samples"]))
        resume = resume_latency(stack, cfg["resume_samples"])
        resume["shards"] = shards_of_resume_stream(stack)
        return dict(mode=mode, idle=idle, fixed=fixed, sustained=cap, resume=resume)
    finally:
        stack.stop()
        shutil.rmtree(run, ignore_errors=True)


def md_table(header, rows):
    """A markdown table: header cells, then rows of cells (already formatted)."""
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def report(results, cfg, stamp, command, load_before, load_after, elapsed):
    single, cluster = results["single"], results["cluster"]
    r1, r3 = cfg["node_rate"], 3 * cfg["node_rate"]
    runs = [("1 Redis", r1, single), ("1 Redis", r3, single), ("3-primary cluster", r3, cluster)]
    lines = [
        "## bench/cluster_capacity.py %s\n" % stamp,
        "Command: `%s`. Machine: %s. Load average before %s, after %s (other engineers' work "
        "on the same 2 cores); %.0f s."
        % (command, machine(), load_before, load_after, elapsed),
        "Gateway (1 thread, history on, presence off) on core %d; Redis nodes and loadgen on core "
        "%d. %d streams, one per user; every event `FCALL sse_publish 1 sse:{user:u<r>}` to a "
        "random user, %d-byte payload, %g s per measurement.\n"
        % (GATEWAY_CORE, AUX_CORE, cfg["users"], cfg["payload"], cfg["duration"]),
        "### Redis CPU per event, per node\n"]
    rows = []
    for name, rate, r in runs:
        f = r["fixed"][rate]
        idle_win = r["idle"]["window_s"] or 1
        for n, idle_cpu in zip(f["nodes"], r["idle"]["redis_cpu_each_s"]):
            rows.append([name, rate, ":%d" % n["port"], n["events"],
                         "%.0f" % (n["events"] / f["window_s"]),
                         "%.1f" % (n["cpu_us_per_event"] or 0),
                         "%.1f" % (idle_cpu * 1000 / idle_win)])
        if len(f["nodes"]) > 1:
            rows.append([name, rate, "all", f["published"], "", "**%.1f** (sum of the nodes' CPU)"
                         % (f["redis_cpu_us_per_event"] or 0), ""])
    lines += md_table(["setup", "events/s", "node", "events", "events/s at the node",
                       "Redis CPU-µs per event", "idle (CPU-ms/s)"], rows)
    lines.append("")
    lines += md_table(
        ["setup", "events/s", "gateway CPU-µs per delivery", "delivered",
         "publish→receive p50 / p99 (ms)"],
        [[name, rate, "%.1f" % r["fixed"][rate]["cpu_us_per_delivery"],
          "%.1f %%" % r["fixed"][rate]["delivered_pct"],
          "%.2f / %.2f" % (r["fixed"][rate]["lat_p50_ms"], r["fixed"][rate]["lat_p99_ms"])]
         for name, rate, r in runs])
    lines += ["", "### Sustained on this machine (every Redis node and the load generator on one "
              "core)\n"]
    rows = []
    for name, r in (("1 Redis", single), ("3-primary cluster", cluster)):
        sus = r["sustained"]
        p = sus["probe"] or {}
        rows.append([name, sus["rate"], "%.0f" % (p["deliveries"] / p["window_s"] if p else 0),
                     "%.1f" % p.get("lat_p99_ms", 0), sus["limit"]])
    lines += md_table(["setup", "events/s (FCALL, acknowledged)", "live deliveries/s", "p99 (ms)",
                       "search stopped"], rows)
    proj = projection(results, cfg)
    lines += [
        "",
        "### Projection (computed, not measured): one core per primary\n",
        "At the same load per node (%d events/s), one core running one node at 100%% would hold "
        "1e6 / (its CPU-µs per event) events/s: 1 Redis **%.0f events/s**; the cluster's "
        "nodes %s, **%.0f events/s** aggregate with 3 primaries on 3 cores, **%.2f×** one Redis "
        "(aim ≥ 2.5×; above 3× only means the nodes sharing one core here batched more per "
        "wake-up). With users spread as unevenly as here, the busiest node saturates first: "
        "%.0f events/s (%.2f×). At the same total rate (%d events/s) the cluster spends %.2f× "
        "the "
        "Redis CPU of one Redis in all (each node gets a third of the commands per wake-up). "
        "CPU per event falls as a node's rate rises, so the events/s per core are low bounds; "
        "the ratio compares like with like. It assumes free cores and leaves out the clients' "
        "and gateways' CPU, which scale out separately."
        % (r1, proj["single_per_core"], ", ".join("%.0f" % x for x in proj["node_per_core"]),
           proj["cluster_aggregate"], proj["ratio"], proj["cluster_bound_by_busiest"],
           proj["bound_ratio"], r3, proj["total_cpu_ratio_same_total_rate"]),
        "",
        "### Resume latency, 34-channel stream (user + broadcast + 32 topics)\n"]
    lines += md_table(
        ["setup", "shards", "samples", "p50 (ms)", "p99 (ms)", "max (ms)", "id bytes", "truncated"],
        [[name, res["shards"], res["samples"], "%.1f" % res["p50_ms"], "%.1f" % res["p99_ms"],
          "%.1f" % res["max_ms"], res["id_bytes"], res["truncated"]]
         for name, res in (("1 Redis", single["resume"]),
                           ("3-primary cluster", cluster["resume"]))])
    lines.append("\nFrom the Last-Event-ID request to the 32nd replayed event (one missed event "
                 "per topic, each checked), one gateway; the client is Python "
                 "(ssegw_testlib.SseClient).")
    return "\n".join(lines) + "\n", proj


def projection(results, cfg):
    r1, r3 = cfg["node_rate"], 3 * cfg["node_rate"]
    s_us = results["single"]["fixed"][r1]["nodes"][0]["cpu_us_per_event"]
    c_run = results["cluster"]["fixed"][r3]
    nodes = [n for n in c_run["nodes"] if n["cpu_us_per_event"]]
    per_core = [1e6 / n["cpu_us_per_event"] for n in nodes]
    total = sum(n["events"] for n in nodes)
    aggregate = sum(per_core)
    # The node with the largest share of the events reaches 100 % first.
    bound = min(pc * total / n["events"] for pc, n in zip(per_core, nodes))
    single3 = results["single"]["fixed"][r3]["redis_cpu_us_per_event"]
    return dict(single_per_core=1e6 / s_us, node_per_core=per_core, cluster_aggregate=aggregate,
                ratio=aggregate * s_us / 1e6, cluster_bound_by_busiest=bound,
                bound_ratio=bound * s_us / 1e6,
                total_cpu_ratio_same_total_rate=c_run["redis_cpu_us_per_event"] / single3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: fewer streams, shorter")
    ap.add_argument("--gateway", default=os.environ.get(
        "SSEGW_BIN", os.path.join(ROOT, "build", "sse-gateway")))
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    a = ap.parse_args()
    cfg = QUICK if a.quick else FULL
    if not os.path.exists(LOADGEN):
        sys.exit("build loadgen first: cmake -S bench -B bench/.build -DCMAKE_BUILD_TYPE=Release "
                 "&& cmake --build bench/.build")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    command = " ".join(["bench/cluster_capacity.py"] + sys.argv[1:])
    load_before = "%.2f %.2f %.2f" % os.getloadavg()
    t0 = time.time()
    results = {}
    for mode in ("single", "cluster"):
        results[mode] = run_setup(mode, cfg, a.gateway)
    load_after = "%.2f %.2f %.2f" % os.getloadavg()
    md, proj = report(results, cfg, stamp, command, load_before, load_after, time.time() - t0)
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, "cluster-capacity-" + stamp)
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump(dict(command=command, machine=machine(), load_before=load_before,
                       load_after=load_after, config=cfg, results=results, projection=proj),
                  f, indent=1)
    print(md)
    log("wrote %s.{md,json}" % base)


if __name__ == "__main__":
    main()

"""docker/docker-compose.yml, running in Podman (scripts/compose-test starts it), checked the way
an operator and a browser meet it: only through the published load balancer port on 127.0.0.1,
haproxy's stats page and the podman command line.

  StackTest       (before the browser test) the image's HEALTHCHECK turns the three replicas
                  healthy; haproxy spreads streams round robin; a replica that loses Redis turns
                  unhealthy and haproxy takes it out, then back; the demo page loads
  RedisKillTest   (after the browser test) `podman kill` of Redis, then `podman start`: open
                  streams stay up, resubscribe and receive what is published afterwards, with
                  history (the functions are installed again), and every replica is healthy again

Environment (set by scripts/compose-test): COMPOSE_PROJECT, COMPOSE_LB_PORT, COMPOSE_STATS_PORT,
COMPOSE_UP_AT (time.time() when `up` was started), CONTAINERS_CONF.
"""

import json
import os
import subprocess
import time
import unittest
import urllib.request

from ssegw_testlib import SseClient, wait_until

PROJECT = os.environ.get("COMPOSE_PROJECT", "")
LB_PORT = int(os.environ.get("COMPOSE_LB_PORT", "0"))
STATS_PORT = int(os.environ.get("COMPOSE_STATS_PORT", "0"))
GATEWAYS = ("gw1", "gw2", "gw3")
HOST = "127.0.0.1"


def container(service):
    """podman-compose 1.0.3 names containers <project>_<service>_1."""
    return "%s_%s_1" % (PROJECT, service)


def podman(*args, check=True, timeout=60):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("podman %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                         (p.stderr or p.stdout).strip()))
    return p


def inspect(service, fmt):
    return podman("inspect", "-f", fmt, container(service)).stdout.strip()


def healthcheck_run(service):
    """Runs the container's configured health check once, as the engine's scheduler would:
    Podman schedules health checks with systemd timers, and the test machines run no systemd,
    so the test is the scheduler (`podman healthcheck run`: exit 0 healthy, 1 unhealthy)."""
    return podman("healthcheck", "run", container(service), check=False, timeout=30).returncode


def health(service):
    return inspect(service, "{{.State.Health.Status}}")


def drive_until_healthy(services, timeout):
    """Runs each service's health check at most once a second until all are healthy."""
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for s in services:
            healthcheck_run(s)
            states[s] = health(s)
        if all(v == "healthy" for v in states.values()):
            return states
        if time.monotonic() > deadline:
            raise AssertionError("not all healthy within %ds: %s" % (timeout, states))
        time.sleep(1.0)


def stats():
    """haproxy's stats CSV, one dict per gateways backend server: status, scur (open streams)."""
    with urllib.request.urlopen("http://%s:%d/stats;csv" % (HOST, STATS_PORT), timeout=3) as r:
        lines = r.read().decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "gateways" and row.get("svname") in GATEWAYS:
            out[row["svname"]] = {"status": row["status"], "scur": int(row["scur"] or 0)}
    return out


def open_streams():
    return [stats()[g]["scur"] for g in GATEWAYS]


def lb_get(path):
    req = urllib.request.Request("http://%s:%d%s" % (HOST, LB_PORT, path))
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def lb_publish(body):
    req = urllib.request.Request("http://%s:%d/admin/publish" % (HOST, LB_PORT),
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, json.loads(r.read())


def redis_cli(*args):
    return podman("exec", container("redis"), "redis-cli", *args).stdout.strip()


def wait_streams(expected, timeout=15):
    return wait_until(lambda: open_streams() == expected and expected, timeout,
                      message=lambda: "open streams per replica %s, expected %s"
                      % (open_streams(), expected))


class StackTest(unittest.TestCase):
    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        wait_until(lambda: sum(open_streams()) == 0, 15, message="streams left open")

    def stream(self, user, topics=()):
        c = SseClient(LB_PORT, user=user, topics=topics, timeout=5)
        self.clients.append(c)
        self.assertEqual(c.status, 200, c.summary())
        return c

    def test_1_the_images_healthcheck_turns_three_replicas_healthy(self):
        for g in GATEWAYS:
            hc = json.loads(inspect(g, "{{json .Config.Healthcheck}}"))
            self.assertEqual(hc["Test"], ["CMD", "/usr/local/bin/sse-gateway", "--health-check"],
                             "%s runs the image's HEALTHCHECK" % g)
            self.assertEqual(inspect(g, "{{.Config.User}}"), "ssegw:ssegw")
        states = drive_until_healthy(GATEWAYS + ("redis",), 90)
        took = time.time() - float(os.environ.get("COMPOSE_UP_AT", time.time()))
        print("compose figure: all three replicas and redis healthy %.1f s after `up` started"
              % took)
        log = json.loads(inspect("gw1", "{{json .State.Health.Log}}"))
        print("gw1 health log, last:", log[-1]["Output"].strip())
        self.assertIn("200", log[-1]["Output"])
        self.assertEqual(states, {s: "healthy" for s in GATEWAYS + ("redis",)})
        wait_until(lambda: all(v["status"] == "UP" for v in stats().values()), 15,
                   message=lambda: "haproxy: %s" % stats())

    def test_2_haproxy_spreads_streams_round_robin(self):
        for i in range(6):
            c = self.stream("rr%d" % i)
            c.wait_for_raw(lambda r: b"\n\n" in r, 5)
        counts = wait_streams([2, 2, 2])
        print("streams per replica (gw1, gw2, gw3) after 6 connections:", counts)

    def test_3_a_replica_that_loses_redis_turns_unhealthy_and_haproxy_takes_it_out(self):
        # gw2 alone loses Redis: "redis" resolves to a dead loopback address in its /etc/hosts
        # (read before DNS), and Redis drops its connections, so its reconnects fail.
        gw2 = container("gw2")
        podman("exec", "-u", "0", gw2, "sh", "-c", "cp /etc/hosts /tmp/hosts.orig && "
               "echo '127.0.0.9 redis' >> /etc/hosts")
        try:
            ids = [c for c in redis_cli("CLIENT", "LIST").splitlines()]
            ip = inspect("gw2", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
            killed = 0
            for line in ids:
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if fields.get("addr", "").rsplit(":", 1)[0] == ip:
                    redis_cli("CLIENT", "KILL", "ID", fields["id"])
                    killed += 1
            self.assertGreater(killed, 0, "gw2 held no Redis connection (%s)" % ip)
            wait_until(lambda: stats()["gw2"]["status"].startswith("DOWN"), 15,
                       message=lambda: "haproxy kept gw2: %s" % stats())
            states = [healthcheck_run("gw2") for _ in range(3)]  # the image's retries: 3
            self.assertEqual(states, [1, 1, 1])
            self.assertEqual(health("gw2"), "unhealthy")
            log = json.loads(inspect("gw2", "{{json .State.Health.Log}}"))
            print("gw2 health log, last:", log[-1]["Output"].strip())
            for i in range(4):
                self.stream("out%d" % i).wait_for_raw(lambda r: b"\n\n" in r, 5)
            counts = wait_streams([2, 0, 2])
            print("4 new streams with gw2 unready (gw1, gw2, gw3):", counts)
        finally:
            podman("exec", "-u", "0", gw2, "sh", "-c", "cat /tmp/hosts.orig > /etc/hosts")
        # 60 s: gw2 now looks "redis" up in Podman's DNS (aardvark-dns) again; on a CI machine at
        # high load its look-ups kept timing out for over 30 s once (the gateway retries until
        # one answers). The message shows what the container's resolver says at the deadline.
        wait_until(lambda: stats()["gw2"]["status"] == "UP", 60,
                   message=lambda: "gw2 did not come back: %s; /etc/hosts: %s; getent hosts "
                   "redis: %r; health: %s; log:\n%s" % (
                       stats(), podman("exec", gw2, "cat", "/etc/hosts").stdout,
                       podman("exec", gw2, "getent", "hosts", "redis", check=False).stdout,
                       podman("healthcheck", "run", gw2, check=False).stdout,
                       podman("logs", "--tail", "30", gw2).stderr))
        drive_until_healthy(("gw2",), 30)

    def test_4_the_demo_page_loads_through_the_load_balancer(self):
        status, headers, _ = lb_get("/")
        self.assertEqual(status, 302)
        self.assertEqual(headers.get("Location") or headers.get("location"), "/demo/")
        status, headers, body = lb_get("/demo/")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", headers.get("content-type", ""))
                        .startswith("text/html"))
        self.assertIn(b"new EventSource", body)


class RedisKillTest(unittest.TestCase):
    def test_streams_recover_after_redis_is_killed_and_started_again(self):
        drive_until_healthy(GATEWAYS, 30)
        wait_until(lambda: all(v["status"] == "UP" for v in stats().values()), 30,
                   message=lambda: "haproxy: %s" % stats())
        clients = [SseClient(LB_PORT, user="rk%d" % i, topics=("rk",), timeout=5)
                   for i in range(3)]
        try:
            for c in clients:
                c.wait_for_raw(lambda r: b"\n\n" in r, 5)
            wait_until(lambda: sum(open_streams()) == 3, 15,
                       message=lambda: "open streams per replica %s" % open_streams())
            print("streams per replica (gw1, gw2, gw3):", open_streams())
            self.assertEqual(lb_publish({"channel": "topic:rk", "event": "before", "data": 1})[0],
                             202)
            for c in clients:
                c.wait_for_events(1, 10, event="before")

            t0 = time.monotonic()
            podman("kill", container("redis"))
            # podman kill returns once the signal is sent; the state passes through "stopped"
            wait_until(lambda: inspect("redis", "{{.State.Status}}") == "exited", 10,
                       message=lambda: "redis state: %s" % inspect("redis", "{{.State.Status}}"))
            # not ready while Redis is gone: the image's health check says so
            wait_until(lambda: healthcheck_run("gw1") == 1, 15,
                       message="gw1 stayed ready without Redis")
            podman("start", container("redis"))
            drive_until_healthy(("redis",) + GATEWAYS, 60)
            print("compose figure: redis killed -> every replica healthy again in %.1f s"
                  % (time.monotonic() - t0))
            # the streams stayed open all along, and receive history events published now
            # (FCALL needs the functions the gateways install again on the new Redis)
            for c in clients:
                self.assertFalse(c.closed.is_set(), c.summary())
            for k in range(3):
                wait_until(lambda: lb_publish({"channel": "topic:rk", "event": "after",
                                               "data": k})[0] == 202, 10)
            pos = redis_cli("FCALL", "sse_publish", "1", "broadcast",
                            json.dumps({"event": "after-fcall", "data": "x"}))
            self.assertTrue(pos, "FCALL sse_publish answered nothing")
            try:
                for c in clients:
                    got = c.wait_for_events(3, 15, event="after")
                    self.assertEqual([e["data"] for e in got], ["0", "1", "2"])
                    e = c.wait_for_events(1, 15, event="after-fcall")[0]
                    self.assertEqual(e["id"], pos)
            except AssertionError:
                # The replicas' own account of the outage: reconnects, catch-up, epochs.
                for gw in GATEWAYS:
                    logs = podman("logs", "--tail", "40", container(gw), check=False)
                    print("---- %s log (last 40 lines) ----\n%s%s" % (gw, logs.stdout, logs.stderr))
                raise
        finally:
            for c in clients:
                c.close()


if __name__ == "__main__":
    unittest.main()

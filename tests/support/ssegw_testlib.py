"""Test harness for sse-gateway integration and end-to-end tests (Python standard library only).

Everything here talks to 127.0.0.1 only, bounds every wait with a deadline and owns the
processes it starts (each in its own process group, killed on cleanup).

Pieces:
  free_port(), wait_until()          small utilities
  RespClient, RedisServer            a tiny RESP client and a throwaway redis-server
  Gateway                            the sse-gateway binary with a per-test JSON config
  SseParser, SseClient               raw-socket SSE client (status, headers, events, comments)
  ReconnectingSseClient              EventSource-like client: reconnects, sends Last-Event-ID
  SseFleet, SseFleetClient           many EventSource-like clients in one selector thread
  publish_http(), http_request()     admin API helpers
  make_jwt()                         HS256 tokens built with hmac/hashlib/base64
  Topology                           drives scripts/topology (redis + 3 gateways + haproxy)
  GatewayTestCase                    unittest base: start_* helpers with cleanup and log dumps
"""

import base64
import copy
import errno
import hashlib
import heapq
import hmac
import json
import os
import queue
import random
import re
import selectors
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from pathlib import Path

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]


def gateway_binary():
    """Path of the gateway under test: $SSEGW_BINARY, else build/sse-gateway."""
    return os.environ.get("SSEGW_BINARY") or str(REPO_ROOT / "build" / "sse-gateway")


def require_binary(testcase=None):
    path = gateway_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        msg = "gateway binary not found or not executable: %s (set SSEGW_BINARY)" % path
        if testcase is not None:
            testcase.fail(msg)
        raise AssertionError(msg)
    return path


# --------------------------------------------------------------------------------------------
# small utilities

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (all held open at once while choosing, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class WaitAborted(AssertionError):
    """Raised from a wait_until predicate to stop waiting at once (e.g. the process died)."""


def wait_until(predicate, timeout, interval=0.05, message=None):
    """Poll predicate() until it returns a truthy value (returned) or timeout (AssertionError).
    Exceptions from predicate count as 'not yet', except WaitAborted which propagates."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except WaitAborted:
            raise
        except Exception as exc:  # the condition may not be observable yet
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = message() if callable(message) else message
            text = "condition not met within %.1fs" % timeout
            if detail:
                text += ": " + str(detail)
            if last_exc is not None:
                text += " (last error: %r)" % (last_exc,)
            raise AssertionError(text)
        time.sleep(interval)


def kill_process_group(proc, sig=signal.SIGKILL, timeout=10):
    """Signal the process group of a Popen started with start_new_session=True, then reap."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait(timeout=timeout)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def deep_merge(base, override):
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------------------------
# HTTP helpers (raw sockets: exact status codes, no proxies, no redirects)

def http_request(port, method, path, body=None, headers=None, timeout=5.0, host=HOST):
    """One HTTP/1.1 request with Connection: close. Returns (status, headers(dict, lower), body bytes)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    hdrs = {"Host": "%s:%d" % (host, port), "Connection": "close"}
    if body is not None:
        hdrs["Content-Length"] = str(len(body))
        hdrs.setdefault("Content-Type", "application/json")
    hdrs.update(headers or {})
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    req += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req.encode("latin-1") + (body or b""))
        data = b""
        while b"\r\n\r\n" not in data:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines or not lines[0].startswith("HTTP/"):
            raise ConnectionError("bad HTTP response: %r" % data[:200])
        status = int(lines[0].split()[1])
        rh = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            rh[k.strip().lower()] = v.strip()
        if "content-length" in rh:
            need = int(rh["content-length"])
            while len(rest) < need and time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            rest = rest[:need]
        elif rh.get("transfer-encoding", "").lower() == "chunked":
            while not rest.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            rest = _dechunk(rest)
        else:
            while time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                rest += chunk
        return status, rh, rest


def _dechunk(data):
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def http_get(port, path, timeout=5.0):
    return http_request(port, "GET", path, timeout=timeout)


def http_status(port, path, timeout=2.0):
    """Status code of GET path, or None when nothing answers."""
    try:
        return http_request(port, "GET", path, timeout=timeout)[0]
    except (OSError, ConnectionError, ValueError, IndexError):
        return None


def publish_http(admin_port, body, timeout=5.0):
    """POST /publish on the admin port. Returns (status, parsed JSON body or text)."""
    status, _, raw = http_request(admin_port, "POST", "/publish", body=body, timeout=timeout)
    try:
        parsed = json.loads(raw.decode() or "null")
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return status, parsed


def parse_metrics(text):
    """Prometheus text -> Metrics."""
    return Metrics(text)


class Metrics:
    """Parsed /metrics: samples[(name, frozenset(labels))] = value."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "{" in line:
                name, _, rest = line.partition("{")
                labels_txt, _, value_txt = rest.rpartition("}")
                labels = _parse_labels(labels_txt)
            else:
                name, _, value_txt = line.partition(" ")
                labels = {}
            parts = value_txt.split()
            if not parts:
                continue
            try:
                value = float(parts[0])
            except ValueError:
                continue
            self.samples[(name.strip(), frozenset(labels.items()))] = value

    def series(self, name):
        """[(labels dict, value)] for one metric name."""
        return [(dict(l), v) for (n, l), v in self.samples.items() if n == name]

    def get(self, name, default=0.0, **labels):
        """Sum of every sample of name whose labels include the given ones."""
        found = False
        total = 0.0
        for (n, l), v in self.samples.items():
            if n != name:
                continue
            ld = dict(l)
            if all(ld.get(k) == str(val) for k, val in labels.items()):
                total += v
                found = True
        return total if found else default

    def has(self, name):
        return any(n == name for (n, _) in self.samples)

    def as_dict(self):
        out = {}
        for (n, l), v in self.samples.items():
            key = n + ("{" + ",".join('%s="%s"' % kv for kv in sorted(l)) + "}" if l else "")
            out[key] = v
        return out

    def __repr__(self):
        return "Metrics(%r)" % self.as_dict()


def _parse_labels(txt):
    labels = {}
    i = 0
    n = len(txt)
    while i < n:
        while i < n and txt[i] in " ,":
            i += 1
        if i >= n:
            break
        eq = txt.index("=", i)
        key = txt[i:eq].strip()
        i = eq + 1
        if i < n and txt[i] == '"':
            i += 1
            val = []
            while i < n and txt[i] != '"':
                if txt[i] == "\\" and i + 1 < n:
                    i += 1
                    val.append({"n": "\n"}.get(txt[i], txt[i]))
                else:
                    val.append(txt[i])
                i += 1
            i += 1
            labels[key] = "".join(val)
        else:
            j = txt.find(",", i)
            j = n if j < 0 else j
            labels[key] = txt[i:j].strip()
            i = j
    return labels


# --------------------------------------------------------------------------------------------
# JWT

def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, secret, alg="HS256", header=None):
    """An HS256 (or deliberately broken) JWT built with the standard library."""
    hdr = {"alg": alg, "typ": "JWT"}
    hdr.update(header or {})
    signing_input = _b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "." + \
        _b64url(json.dumps(claims, separators=(",", ":")).encode())
    if alg == "HS256":
        sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    elif alg == "none":
        sig = b""
    else:
        raise ValueError("only HS256/none here")
    return signing_input + "." + _b64url(sig)


# --------------------------------------------------------------------------------------------
# Redis

class RespError(Exception):
    pass


class RespClient:
    """A minimal blocking RESP2 client: enough for PING/PUBLISH/PUBSUB/XRANGE/FCALL."""

    def __init__(self, port, host=HOST, timeout=5.0, ssl_context=None, server_hostname=None,
                 auth=None):
        """ssl_context: talk TLS (server_hostname for SNI and the name check); auth: (user,
        password) sent with AUTH first."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        if auth is not None:
            self.call("AUTH", *auth)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, (bytes, bytearray)):
                b = bytes(a)
            else:
                b = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(args))

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise RespError("unexpected RESP line %r" % line)

    def call(self, *args):
        self.send(*args)
        reply = self.read_reply()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def pipeline(self, commands):
        """Send many commands in one write; returns replies (errors returned, not raised)."""
        self.sock.sendall(b"".join(self.encode(c) for c in commands))
        return [self.read_reply() for _ in commands]


def _s(x):
    return x.decode() if isinstance(x, (bytes, bytearray)) else x


def make_test_pki(directory):
    """A throw-away PKI made with the openssl CLI: ca.crt/ca.key, server.crt/server.key (for
    localhost and 127.0.0.1), client.crt/client.key, and other-ca.crt (a CA that signed
    nothing here). Returns the directory."""
    os.makedirs(directory, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out",
            ca + ".crt", "-days", "2", "-subj", "/CN=ssegw test " + ca)
    with open(os.path.join(directory, "san.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn in (("server", "localhost"), ("client", "ssegw-test-client")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", "/CN=" + cn)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", "san.cnf")
    return directory


class RedisServer:
    """A redis-server on a free loopback port, in its own temp dir and process group.
    tls: a make_test_pki() directory: the server then listens with TLS only (rediss://),
    requiring client certificates when tls_auth_clients. auth: (user, password) the test's own
    connections log in with (when the default user is disabled)."""

    persistence = ("--appendonly", "no")
    no_ping_message = "redis-server on port %d did not answer PING; log: %s"

    def __init__(self, port=None, workdir=None, binary="redis-server", tls=None,
                 tls_auth_clients=False, auth=None, extra_args=()):
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="ssegw-redis-")
        self.binary = binary
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self.auth = auth
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis-%d.log" % self.port)

    @property
    def url(self):
        if self.tls:
            return "rediss://localhost:%d" % self.port
        return "redis://%s:%d" % (HOST, self.port)

    def command(self):
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", os.path.join(self.tls, "server.crt"),
                     "--tls-key-file", os.path.join(self.tls, "server.key"),
                     "--tls-ca-cert-file", os.path.join(self.tls, "ca.crt"),
                     "--tls-auth-clients", "yes" if self.tls_auth_clients else "no"]
        return [self.binary, *ports, "--bind", HOST, "--save", "",
                *self.persistence, "--dir", self.dir, "--protected-mode", "no",
                "--daemonize", "no", *self.extra_args]

    def ssl_context(self):
        """What the test's own connections use to reach a TLS server."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=os.path.join(self.tls, "ca.crt"))
        ctx.load_cert_chain(os.path.join(self.tls, "client.crt"),
                            os.path.join(self.tls, "client.key"))
        return ctx

    def start(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            return self
        cmd = self.command()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        try:
            wait_until(self._pings, timeout,
                       message=lambda: self.no_ping_message % (self.port, self.log_tail()))
        except AssertionError:
            self.kill()
            raise
        return self

    def _pings(self):
        if self.proc.poll() is not None:
            raise WaitAborted("redis-server exited with %s: %s" % (self.proc.returncode,
                                                                     self.log_tail()))
        try:
            return self.cli("PING") == "PONG"
        except (OSError, ConnectionError, RespError):
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        if self.proc is not None:
            kill_process_group(self.proc, signal.SIGTERM, timeout)

    def kill(self):
        """kill -9 (no shutdown, clients see their connection reset)."""
        if self.proc is not None:
            kill_process_group(self.proc, signal.SIGKILL)

    def restart(self, timeout=10.0):
        """Start again on the same port (after stop() or kill())."""
        self.stop()
        self.proc = None
        return self.start(timeout)

    def cleanup(self):
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, timeout=5.0):
        return RespClient(self.port, timeout=timeout, ssl_context=self.ssl_context(),
                          server_hostname="localhost", auth=self.auth)

    def cli(self, *args, timeout=5.0):
        """One command on a fresh connection; bytes replies decoded to str where possible."""
        with self.client(timeout=timeout) as c:
            reply = c.call(*args)
        return _decode(reply)

    # convenience
    def publish(self, channel, payload):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        return self.cli("PUBLISH", channel, payload)

    def channels(self, pattern="sse:*"):
        return set(self.cli("PUBSUB", "CHANNELS", pattern))

    def numsub(self, *channels):
        flat = self.cli("PUBSUB", "NUMSUB", *channels)
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def numpat(self):
        return int(self.cli("PUBSUB", "NUMPAT"))

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


class RedisSentinel(RedisServer):
    """`redis-server <conf> --sentinel` on a free loopback port, watching one primary as
    `master_name` (quorum 2, down-after `down_after_ms`). Sentinel rewrites its config file, so
    each gets its own. With tls (a make_test_pki() directory) it listens and reaches the data
    nodes with TLS only."""

    no_ping_message = "redis sentinel on port %d did not answer PING; log: %s"

    def __init__(self, primary_port, master_name="mymaster", down_after_ms=1000, quorum=2,
                 failover_timeout_ms=10000, **kw):
        super().__init__(**kw)
        self.master_name = master_name
        self.conf_path = os.path.join(self.dir, "sentinel-%d.conf" % self.port)
        listen = "port %d\n" % self.port
        if self.tls:
            listen = ("port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\n"
                      "tls-ca-cert-file %s\ntls-auth-clients no\ntls-replication yes\n"
                      % (self.port, os.path.join(self.tls, "server.crt"),
                         os.path.join(self.tls, "server.key"), os.path.join(self.tls, "ca.crt")))
        with open(self.conf_path, "w") as f:
            f.write(listen + "bind %s\nprotected-mode no\ndaemonize no\ndir %s\n"
                    "sentinel monitor %s %s %d %d\n"
                    "sentinel down-after-milliseconds %s %d\n"
                    "sentinel failover-timeout %s %d\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (HOST, self.dir, master_name, HOST, primary_port, quorum,
                       master_name, down_after_ms, master_name, failover_timeout_ms,
                       master_name))

    def command(self):
        return [self.binary, self.conf_path, "--sentinel", *self.extra_args]

    def primary(self):
        """(host, port) the sentinel names as the primary now."""
        host, port = self.cli("SENTINEL", "get-master-addr-by-name", self.master_name)
        return host, int(port)

    def knows(self, replicas, sentinels):
        """It has discovered `replicas` replicas and `sentinels` other sentinels."""
        info = self.cli("SENTINEL", "master", self.master_name)
        fields = dict(zip(info[0::2], info[1::2]))
        return (int(fields.get("num-slaves", 0)) >= replicas
                and int(fields.get("num-other-sentinels", 0)) >= sentinels)


def free_cluster_ports(n):
    """n loopback ports for cluster nodes whose cluster bus ports (port + 10000) are free too.
    Both lie below the kernel's ephemeral range (32768+ here): a bus port taken from that range
    can be held at any moment by the local end of some other test's connection, and Redis then
    aborts with "Failed listening on port ... (cluster)". Each pair is bound once to check it."""
    out = []
    rng = random.Random()
    for _ in range(2000):
        if len(out) == n:
            return out
        p = rng.randrange(20000, 22700)
        if p in out:
            continue
        if all(_bindable(q) for q in (p, p + 10000)):
            out.append(p)
    raise AssertionError("no ports with free cluster bus ports")


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


class RedisCluster:
    """A Redis Cluster on loopback: `primaries` primaries with `replicas` replicas each, made
    with `redis-cli --cluster create` (node timeout `node_timeout_ms`). Nodes are RedisServer
    processes (cluster-enabled, each with its own nodes file)."""

    def __init__(self, workdir, primaries=3, replicas=1, node_timeout_ms=2000):
        self.dir = workdir
        self.auth = None  # (user, password) of the test's own connections: set_auth()
        self.nodes = []
        for port in free_cluster_ports(primaries * (1 + replicas)):
            self.nodes.append(RedisServer(port=port, workdir=workdir, extra_args=(
                "--cluster-enabled", "yes",
                "--cluster-config-file", os.path.join(workdir, "nodes-%d.conf" % port),
                "--cluster-node-timeout", str(node_timeout_ms))))
        self.replicas = replicas

    def start(self, timeout=30.0):
        for n in self.nodes:
            n.start()
        addrs = ["%s:%d" % (HOST, n.port) for n in self.nodes]
        proc = subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas",
                               str(self.replicas), "--cluster-yes"], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise AssertionError("redis-cli --cluster create failed: %s" % proc.stdout[-2000:])
        wait_until(lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO")
                               for n in self.nodes if n.running()), timeout, interval=0.1,
                   message="the cluster never reached cluster_state:ok")
        if self.replicas:
            # Replicas show in CLUSTER SHARDS a moment after cluster_state:ok: a test that picks
            # a shard's replica (to fail over to it) must find it there.
            primaries = len(self.nodes) // (self.replicas + 1)

            def complete():
                sh = self.shards()
                return len(sh) == primaries and all(len(r) >= self.replicas for _, r, _ in sh)
            wait_until(complete, timeout, interval=0.1,
                       message=lambda: "replicas never listed: %s" % self.shards())
        return self

    def kill(self):
        for n in self.nodes:
            n.kill()

    def set_auth(self, auth):
        """The test's own connections (cli, call, shards, owner) log in as `auth` from now on."""
        self.auth = auth
        for n in self.nodes:
            n.auth = auth

    @property
    def url(self):
        return ",".join("redis://%s:%d" % (HOST, n.port) for n in self.nodes[:3])

    def node(self, port):
        return next(n for n in self.nodes if n.port == port)

    def fail_over_to(self, replica):
        """CLUSTER FAILOVER on `replica` once it is in sync; asked again every 5 s if a loaded
        machine makes Redis abort an attempt; returns once `replica` is a primary (<= 20 s)."""
        wait_until(lambda: "master_link_status:up" in self.node(replica).cli("INFO", "replication"), 15)
        asked = [time.monotonic()]
        self.node(replica).cli("CLUSTER", "FAILOVER")

        def failed_over():
            if any(p == replica for p, _, _ in self.shards()):
                return True
            if time.monotonic() - asked[0] > 5:
                self.node(replica).cli("CLUSTER", "FAILOVER")
                asked[0] = time.monotonic()
            return False
        wait_until(failed_over, 20, interval=0.1, message="CLUSTER FAILOVER never finished")

    def shards(self):
        """[(primary port, [replica ports], [(first slot, last slot)...])] from a live node."""
        for n in self.nodes:
            if not n.running():
                continue
            try:
                reply = n.cli("CLUSTER", "SHARDS")
            except (OSError, RespError):
                continue
            out = []
            for shard in reply:
                f = dict(zip(shard[0::2], shard[1::2]))
                slots = f["slots"]
                ranges = [(int(slots[i]), int(slots[i + 1])) for i in range(0, len(slots), 2)]
                primary, reps = None, []
                for node in f["nodes"]:
                    nf = dict(zip(node[0::2], node[1::2]))
                    if nf["role"] == "master" and nf["health"] == "online":
                        primary = int(nf["port"])
                    elif nf["role"] != "master":
                        reps.append(int(nf["port"]))
                if ranges:
                    out.append((primary, reps, ranges))
            return out
        raise AssertionError("no cluster node answers")

    def owner(self, key):
        """Port of the primary owning key's slot, asked from a live node."""
        slot = None
        for n in self.nodes:
            if n.running():
                slot = int(n.cli("CLUSTER", "KEYSLOT", key))
                break
        for primary, _, ranges in self.shards():
            if any(lo <= slot <= hi for lo, hi in ranges):
                return primary
        raise AssertionError("slot %d has no primary" % slot)

    def call(self, *args, key=None):
        """A command sent like a cluster-aware client: to any live node, following MOVED."""
        ports = [n.port for n in self.nodes if n.running()]
        port = ports[0]
        for _ in range(5):
            try:
                with RespClient(port, timeout=5, auth=self.auth) as c:
                    return _decode(c.call(*args))
            except RespError as e:
                text = str(e)
                if not (text.startswith("MOVED ") or text.startswith("ASK ")):
                    raise
                port = int(text.rsplit(":", 1)[1])
        raise AssertionError("too many redirects for %s" % (args,))


def cluster_key(channel, prefix="sse:"):
    """A channel's Redis name in cluster mode: its history key and its sharded channel."""
    return "%s{%s}" % (prefix, channel)


class Unacknowledged(Exception):
    """The connection died after the call was sent: the node may or may not have run it."""


class ClusterPublisher:
    """A backend publishing like a cluster-aware client (FCALL sse_publish, SPUBLISH): MOVED
    re-routes, ASK is followed with ASKING on the target (what redis-py's RedisCluster does
    during a slot migration), CLUSTERDOWN/TRYAGAIN and dead links are retried until
    `deadline_s`. auth: (user, password) its connections log in with."""

    def __init__(self, cluster, auth=None):
        self.cluster = cluster
        self.auth = auth
        self.clients = {}
        self.owner = {}

    def _client(self, port):
        if port not in self.clients:
            self.clients[port] = RespClient(port, timeout=5, auth=self.auth)
        return self.clients[port]

    def close(self):
        for c in self.clients.values():
            c.close()

    def fcall(self, channel, payload, deadline_s=20.0, retry_unsure=True):
        """FCALL sse_publish: the entry id (<epoch>-<seq>). retry_unsure=False: a connection lost
        after the call was sent raises Unacknowledged instead of sending it again (the dead node
        may have run it, and a second copy would count as a duplicate delivery)."""
        key = cluster_key(channel)
        return self.routed(key, ["FCALL", "sse_publish", "1", key, _payload_text(payload)],
                           deadline_s, retry_unsure)

    def spublish(self, channel, payload, deadline_s=20.0):
        """SPUBLISH (live only): the number of subscribers Redis delivered it to."""
        key = cluster_key(channel)
        return self.routed(key, ["SPUBLISH", key, _payload_text(payload)], deadline_s)

    def routed(self, key, command, deadline_s=20.0, retry_unsure=True):
        end = time.monotonic() + deadline_s
        port = self.owner.get(key) or self.cluster.owner(key)
        asking = False
        while time.monotonic() < end:
            sent = False
            try:
                c = self._client(port)
                if asking:
                    c.call("ASKING")
                sent = True
                r = c.call(*command)
                self.owner[key] = port if not asking else self.owner.get(key, port)
                return r.decode() if isinstance(r, bytes) else r
            except RespError as e:
                text = str(e)
                if text.startswith("MOVED "):
                    port, asking = int(text.rsplit(":", 1)[1]), False
                    self.owner[key] = port
                elif text.startswith("ASK "):
                    port, asking = int(text.rsplit(":", 1)[1]), True
                elif text.startswith(("CLUSTERDOWN", "TRYAGAIN", "LOADING")):
                    time.sleep(0.05)
                    port, asking = self.cluster.owner(key), False
                else:
                    raise
            except OSError:
                dead = self.clients.pop(port, None)
                if dead is not None:
                    dead.close()
                if sent and not retry_unsure:
                    raise Unacknowledged(command[-1])
                time.sleep(0.1)
                port, asking = self.cluster.owner(key), False
        raise AssertionError("%s to %s not acknowledged in %.0f s" % (command[0], key, deadline_s))


def _payload_text(payload):
    return payload if isinstance(payload, str) else json.dumps(payload)


def readme_redis_acl_line():
    """The one `ACL SETUSER` line of the README's "Redis credentials and TLS" section: the tests
    run the gateway under exactly it, so README and tests cannot drift apart."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Redis credentials and TLS"):]
    block = re.search(r"^```\n(.*?)^```", section, re.S | re.M).group(1).strip()
    assert block.startswith("ACL SETUSER ") and "\n" not in block, block
    return block


TEST_ADMIN = ("admin", "admin-password-for-the-test")


def install_readme_acl(server):
    """On one redis-server (or cluster node): an admin user the test's own connections log in
    as from now on, the README's user exactly as written, then the default user off (checked).
    Returns the README user's (name, password)."""
    acl = shlex.split(readme_redis_acl_line())
    server.cli("ACL", "SETUSER", TEST_ADMIN[0], "on", ">" + TEST_ADMIN[1], "~*", "&*", "+@all")
    server.auth = TEST_ADMIN
    server.cli(*acl)
    server.cli("ACL", "SETUSER", "default", "off")
    with RespClient(server.port) as c:
        try:
            c.call("GET", "x")
        except RespError as e:
            if not str(e).startswith("NOAUTH"):
                raise
        else:
            raise AssertionError("the default user must be off")
    return acl[2], next(a[1:] for a in acl if a.startswith(">"))


def _decode(reply):
    if isinstance(reply, list):
        return [_decode(r) for r in reply]
    if isinstance(reply, (bytes, bytearray)):
        try:
            return bytes(reply).decode()
        except UnicodeDecodeError:
            return bytes(reply)
    return reply


# --------------------------------------------------------------------------------------------
# Gateway

DEFAULT_CONFIG = {
    "server": {"host": HOST, "admin_host": HOST, "threads": 2, "max_connections": 10000,
               "max_connections_per_user": 64, "drain_seconds": 1},
    "sse": {"path": "/events", "heartbeat_seconds": 15, "retry_ms": 2000,
            "max_queue_bytes": 1048576, "max_topics": 32, "max_event_bytes": 65536},
    "auth": {"mode": "none"},
    "redis": {"prefix": "sse:", "subscribe_mode": "per-channel"},
    "history": {"enabled": True, "max_len": 1000, "ttl_seconds": 600},
    "log": {"level": "info", "format": "text"},
}


class Gateway:
    """One sse-gateway process with its own JSON config, log file and ports."""

    def __init__(self, config=None, redis_url="none", threads=2, port=None, admin_port=None,
                 workdir=None, binary=None, log_level=None, extra_args=(), env=None):
        self.binary = binary or gateway_binary()
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="ssegw-gw-")
        self.port, self.admin_port = (port, admin_port)
        if self.port is None or self.admin_port is None:
            p, a = free_ports(2)
            self.port = self.port or p
            self.admin_port = self.admin_port or a
        self.threads = threads
        self.redis_url = redis_url
        self.log_level = log_level or os.environ.get("SSEGW_TEST_LOG_LEVEL", "debug")
        self.extra_args = list(extra_args)
        self.env = env
        self.config = deep_merge(DEFAULT_CONFIG, config or {})
        self.config["server"]["port"] = self.port
        self.config["server"]["admin_port"] = self.admin_port
        self.config["server"]["threads"] = threads
        self.config.setdefault("redis", {})["url"] = redis_url
        self.config_path = os.path.join(self.dir, "gateway-%d.json" % self.port)
        self.log_path = os.path.join(self.dir, "gateway-%d.log" % self.port)
        self.proc = None
        self.returncode = None

    # -- lifecycle
    def command(self):
        return [self.binary, "--config", self.config_path, "--port", str(self.port),
                "--admin-port", str(self.admin_port), "--redis", self.redis_url,
                "--threads", str(self.threads), "--log-level", self.log_level] + self.extra_args

    def start(self, wait="ready", timeout=15.0):
        """Start; wait='ready' (readyz 200), 'healthy' (healthz 200) or None."""
        if not os.path.isfile(self.binary):
            raise AssertionError("gateway binary not found: %s (set SSEGW_BINARY)" % self.binary)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("SSEGW_"):
                del env[k]  # the test's config must be the effective one
        env.update(self.env or {})
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir, env=env,
                                         start_new_session=True)
        finally:
            log.close()
        self.returncode = None
        if wait:
            path = "/readyz" if wait == "ready" else "/healthz"
            try:
                wait_until(lambda: self._status_or_raise(path) == 200, timeout,
                           message=lambda: "gateway %s never answered 200 on %s; log:\n%s"
                           % (self.port, path, self.log_tail()))
            except AssertionError:
                self.kill()
                raise
        return self

    def _status_or_raise(self, path):
        if self.proc.poll() is not None:
            raise WaitAborted("gateway exited with %s; log:\n%s"
                                 % (self.proc.returncode, self.log_tail()))
        return http_status(self.admin_port, path)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.proc else None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def stop(self, expect_code=0, timeout=None, send_signal=True):
        """SIGTERM (unless send_signal is False) and wait for the exit; asserts the exit code
        when expect_code is not None."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = float(self.config["server"].get("drain_seconds", 5)) + 15.0
        if send_signal and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("gateway did not exit within %.0fs of SIGTERM; log:\n%s"
                                 % (timeout, self.log_tail()))
        finally:
            self._reap_group()
        if expect_code is not None and self.returncode != expect_code:
            raise AssertionError("gateway exit code %s, expected %s; log:\n%s"
                                 % (self.returncode, expect_code, self.log_tail()))
        return self.returncode

    def kill(self):
        """kill -9 the whole process group."""
        if self.proc is not None:
            self.returncode = kill_process_group(self.proc, signal.SIGKILL)

    def _reap_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cleanup(self):
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- admin API
    def status(self, path):
        return http_status(self.admin_port, path)

    def readyz(self):
        return http_status(self.admin_port, "/readyz")

    def healthz(self):
        return http_status(self.admin_port, "/healthz")

    def metrics(self):
        status, _, body = http_get(self.admin_port, "/metrics")
        if status != 200:
            raise AssertionError("/metrics answered %s" % status)
        return Metrics(body.decode("utf-8", "replace"))

    def metric(self, name, default=0.0, **labels):
        return self.metrics().get(name, default, **labels)

    def connections(self):
        """Total of the ssegw_connections gauge over shards."""
        return self.metrics().get("ssegw_connections")

    def publish(self, body):
        return publish_http(self.admin_port, body)

    def sse(self, **kw):
        return SseClient(self.port, **kw)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=6000):
        return self.log_text()[-n:]


# --------------------------------------------------------------------------------------------
def assert_redis_refused_cleanly(testcase, gw, attempts_metric, seconds=2.0, min_gap_s=0.1,
                                 links=2):
    """While Redis keeps refusing the gateway's links for `seconds`: /readyz stays 503, the
    process stays up, and `attempts_metric` (the name of the gateway's counter of failed
    attempts, or a function counting them elsewhere, e.g. in Redis) grows by at most one per
    link per reconnect_min (`min_gap_s`): retries back off instead of spinning. Returns the
    number of attempts seen."""
    attempts = attempts_metric if callable(attempts_metric) else (
        lambda: gw.metric(attempts_metric))
    start = attempts()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        testcase.assertEqual(gw.readyz(), 503)
        testcase.assertTrue(gw.running(), gw.log_tail())
        time.sleep(0.2)
    tries = attempts() - start
    testcase.assertLessEqual(tries, links * seconds / min_gap_s + links, "retries must back off")
    return tries


# SSE client

# The gateway's position block: `event: ssegw-position`, `id: <position>`, `data:` (empty).
# EventSource dispatches it only to a listener of that name, so clients here do not count it as
# an event either.
POSITION_EVENT = "ssegw-position"


def is_position_block(block):
    """A block that only tells the client where it stands (see POSITION_EVENT)."""
    return block["event"] == POSITION_EVENT and block["id"] is not None


class SseParser:
    """Incremental text/event-stream parser (WHATWG rules; lines end in LF, CRLF or CR)."""

    def __init__(self):
        self.buf = b""
        self.last_event_id = ""
        self._reset()

    def _reset(self):
        self.data = []
        self.event = None
        self.id = None
        self.retry = None
        self.has_field = False

    def feed(self, data, now=None):
        """Returns a list of ('comment', text) / ('block', dict) items completed by data."""
        now = time.time() if now is None else now
        self.buf += data
        out = []
        while True:
            i_n = self.buf.find(b"\n")
            i_r = self.buf.find(b"\r")
            if i_n < 0 and i_r < 0:
                break
            if i_r >= 0 and (i_n < 0 or i_r < i_n):
                if i_r == len(self.buf) - 1:
                    break  # CR at the end: may be the first half of CRLF
                line = self.buf[:i_r]
                skip = 2 if self.buf[i_r + 1:i_r + 2] == b"\n" else 1
                self.buf = self.buf[i_r + skip:]
            else:
                line = self.buf[:i_n]
                self.buf = self.buf[i_n + 1:]
            item = self._line(line.decode("utf-8", "replace"), now)
            if item is not None:
                out.append(item)
        return out

    def _line(self, line, now):
        if line == "":
            if not self.has_field:
                return None
            block = {
                "event": self.event or "message",
                "id": self.id,
                "data": "\n".join(self.data) if self.data else None,
                "retry": self.retry,
                "last_event_id": self.last_event_id,
                "t": now,
            }
            self._reset()
            return ("block", block)
        if line.startswith(":"):
            return ("comment", line[1:].lstrip(" ") if line.startswith(": ") else line[1:])
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self.has_field = True
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id":
            if "\0" not in value:
                self.id = value
                self.last_event_id = value
        elif name == "retry":
            if value.isdigit():
                self.retry = int(value)
        return None


class SseClient:
    """Raw-socket SSE client. Sends the request, parses status and headers, then reads the
    stream in a background thread: .events (dispatched events, i.e. blocks with data),
    .blocks (every block, including retry-only and position blocks), .comments, .retries, .raw,
    and .queue (every item as ('event'|'block'|'comment'|'closed', value))."""

    def __init__(self, port, user=None, topics=(), query=None, path="/events", headers=None,
                 method="GET", host=HOST, timeout=5.0, keep_raw=True, last_event_id=None,
                 token=None, connect=True):
        self.port = port
        self.host = host
        self.method = method
        self.headers_out = dict(headers or {})
        if last_event_id is not None:
            self.headers_out["Last-Event-ID"] = last_event_id
        params = []
        if user is not None:
            params.append(("user", str(user)))
        for t in topics:
            params.append(("topic", t))
        if token is not None:
            params.append(("token", token))
        if isinstance(query, dict):
            params.extend(query.items())
        elif isinstance(query, (list, tuple)):
            params.extend(query)
        self.target = path
        if isinstance(query, str):
            self.target += "?" + query
        elif params:
            self.target += "?" + urllib.parse.urlencode(params)
        self.timeout = timeout
        self.keep_raw = keep_raw

        self.status = None
        self.reason = None
        self.headers = {}
        self.header_list = []
        self.body = b""
        self.raw = bytearray()
        self.events = []
        self.blocks = []
        self.comments = []
        self.retries = []
        self.queue = queue.Queue()
        self.closed = threading.Event()      # the stream ended (server close, error or close())
        self.closed_by_us = False
        self.close_time = None
        self.error = None
        self._cond = threading.Condition()
        self._sock = None
        self._thread = None
        self.parser = SseParser()
        if connect:
            self.connect()

    # -- connection
    def connect(self):
        deadline = time.monotonic() + self.timeout
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        hdrs = {"Host": "%s:%d" % (self.host, self.port), "Accept": "text/event-stream",
                "Cache-Control": "no-cache"}
        hdrs.update(self.headers_out)
        req = "%s %s HTTP/1.1\r\n" % (self.method, self.target)
        req += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        self._sock.sendall(req.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort()
                raise AssertionError("no response head within %.1fs for %s: %r"
                                     % (self.timeout, self.target, data[:200]))
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                self._abort()
                raise ConnectionError("connection failed while reading head: %r" % exc)
            if not chunk:
                self._abort()
                raise ConnectionError("server closed before a full response head: %r"
                                      % data[:200])
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status_line = lines[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.header_list.append((k.strip(), v.strip()))
            self.headers[k.strip().lower()] = v.strip()
        self._sock.settimeout(None)
        if self.status != 200 or not self.headers.get("content-type", "").startswith(
                "text/event-stream"):
            self._read_body(rest, deadline)
            return self
        self._thread = threading.Thread(target=self._reader, args=(rest,), daemon=True,
                                        name="sse-%s" % self.target[:40])
        self._thread.start()
        return self

    def _read_body(self, rest, deadline):
        body = rest
        need = int(self.headers["content-length"]) if "content-length" in self.headers else None
        try:
            while (need is None or len(body) < need) and time.monotonic() < deadline:
                self._sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = self._sock.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                body += chunk
        except OSError:
            pass
        self.body = body if need is None else body[:need]
        self._abort()
        self.closed.set()

    def _abort(self):
        try:
            self._sock.close()
        except OSError:
            pass

    def _reader(self, initial):
        sock = self._sock
        try:
            if initial:
                self._consume(initial)
            while True:
                try:
                    chunk = sock.recv(65536)
                except OSError as exc:
                    if not self.closed_by_us:
                        self.error = exc
                    break
                if not chunk:
                    break
                self._consume(chunk)
        finally:
            with self._cond:
                self.close_time = time.time()
                self.closed.set()
                self._cond.notify_all()
            self.queue.put(("closed", self.close_time))
            try:
                sock.close()
            except OSError:
                pass

    def _consume(self, chunk):
        now = time.time()
        items = self.parser.feed(chunk, now)
        with self._cond:
            if self.keep_raw:
                self.raw += chunk
            for kind, value in items:
                if kind == "comment":
                    self.comments.append((now, value))
                    self.queue.put(("comment", value))
                else:
                    self.blocks.append(value)
                    if value["retry"] is not None:
                        self.retries.append(value["retry"])
                    # EventSource dispatches a block that had a data line; the position block
                    # goes only to a listener of its name.
                    if value["data"] is not None and not is_position_block(value):
                        self.events.append(value)
                        self.queue.put(("event", value))
                    else:
                        self.queue.put(("block", value))
            self._cond.notify_all()

    def close(self):
        self.closed_by_us = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self._sock.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.closed.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- waiting (all bounded)
    def wait_for(self, predicate, timeout, what="condition"):
        """Wait until predicate(self) is truthy; AssertionError with a summary otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%s not met within %.1fs on %s; %s"
                                         % (what, timeout, self.target, self.summary()))
                self._cond.wait(min(remaining, 0.2))

    def wait_for_events(self, n, timeout=5.0, event=None):
        """The first n dispatched events (optionally only those named event)."""
        def enough(c):
            evs = c.events if event is None else [e for e in c.events if e["event"] == event]
            return evs[:n] if len(evs) >= n else None
        return self.wait_for(enough, timeout, "%d event(s)%s" % (
            n, "" if event is None else " named %r" % event))

    def wait_for_event(self, predicate, timeout=5.0, what="matching event"):
        def found(c):
            for e in c.events:
                if predicate(e):
                    return e
            return None
        return self.wait_for(found, timeout, what)

    def wait_for_comments(self, n, timeout=5.0):
        return self.wait_for(lambda c: c.comments[:n] if len(c.comments) >= n else None,
                             timeout, "%d comment(s)" % n)

    def wait_for_raw(self, predicate, timeout=5.0, what="raw bytes"):
        return self.wait_for(lambda c: predicate(bytes(c.raw)), timeout, what)

    def wait_closed(self, timeout=5.0):
        """True when the server ended the stream within timeout."""
        return self.closed.wait(timeout)

    def event_names(self):
        with self._cond:
            return [e["event"] for e in self.events]

    def snapshot(self):
        with self._cond:
            return list(self.events)

    def summary(self):
        return ("status=%s events=%d %s comments=%d retries=%s closed=%s raw[:300]=%r"
                % (self.status, len(self.events),
                   [(e["event"], (e["data"] or "")[:60]) for e in self.events[-8:]],
                   len(self.comments), self.retries[-5:], self.closed.is_set(),
                   bytes(self.raw[:300])))


class ReconnectingSseClient:
    """EventSource-like: connects, reads, and when the stream ends waits the advertised retry
    (bounded) and reconnects with Last-Event-ID. A non-200 answer from the gateway stops it
    (as a browser would); 502/503/504 from the load balancer are counted and retried.

    All events of all connections accumulate in .events (each tagged with 'conn', the
    connection number starting at 1)."""

    def __init__(self, port, user=None, topics=(), path="/events", query=None,
                 max_retry_ms=3000, name=None, connect_timeout=5.0):
        self.port = port
        self.user = user
        self.topics = list(topics)
        self.path = path
        self.query = query
        self.max_retry_ms = max_retry_ms
        self.connect_timeout = connect_timeout
        self.name = name or "user%s" % user
        self.events = []
        self.comments = 0
        self.connects = 0           # successful 200 streams opened
        self.ends = 0               # streams that ended (server side)
        self.lb_errors = 0          # 502/503/504 answers (load balancer)
        self.connect_errors = 0     # refused / reset before a response
        self.fatal = None           # non-retryable status, as EventSource would give up
        self.connected = False
        self.last_event_id = ""
        self.retry_ms = 1000
        self.connected_since = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._sock = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="sse-" + self.name)

    def start(self):
        self._thread.start()
        return self

    def _target(self):
        params = []
        if self.user is not None:
            params.append(("user", str(self.user)))
        for t in self.topics:
            params.append(("topic", t))
        if self.query:
            params.extend(self.query)
        return self.path + ("?" + urllib.parse.urlencode(params) if params else "")

    def _run(self):
        while not self._stop.is_set():
            delay = self._one_connection()
            if self._stop.is_set() or self.fatal is not None:
                break
            self._stop.wait(delay)
        with self._cond:
            self.connected = False
            self._cond.notify_all()

    def _one_connection(self):
        """Returns the delay before the next attempt."""
        try:
            sock = socket.create_connection((HOST, self.port), timeout=self.connect_timeout)
        except OSError:
            self.connect_errors += 1
            return 0.2
        self._sock = sock
        try:
            hdrs = "Host: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n" % (
                HOST, self.port)
            if self.last_event_id:
                hdrs += "Last-Event-ID: %s\r\n" % self.last_event_id
            sock.sendall(("GET %s HTTP/1.1\r\n%s\r\n" % (self._target(), hdrs)).encode())
            data = b""
            sock.settimeout(self.connect_timeout)
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    self.connect_errors += 1
                    return 0.2
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status in (502, 503, 504):
                self.lb_errors += 1
                return 0.3
            if status != 200:
                self.fatal = status
                return 0
            sock.settimeout(None)
            parser = SseParser()
            parser.last_event_id = self.last_event_id
            with self._cond:
                self.connects += 1
                conn_no = self.connects
                self.connected = True
                self.connected_since = time.time()
                self._cond.notify_all()
            chunk = rest
            while True:
                if chunk:
                    now = time.time()
                    items = parser.feed(chunk, now)
                    with self._cond:
                        for kind, value in items:
                            if kind == "comment":
                                self.comments += 1
                            else:
                                if value["retry"] is not None:
                                    self.retry_ms = value["retry"]
                                if value["data"] is not None and not is_position_block(value):
                                    value["conn"] = conn_no
                                    self.events.append(value)
                        self.last_event_id = parser.last_event_id
                        self._cond.notify_all()
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
            with self._cond:
                self.connected = False
                if not self._stop.is_set():
                    self.ends += 1
                self._cond.notify_all()
            return min(self.retry_ms, self.max_retry_ms) / 1000.0
        except (OSError, ValueError, IndexError):
            self.connect_errors += 1
            return 0.2
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self._cond:
                self.connected = False

    def stop(self):
        self._stop.set()
        s = self._sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def wait_for(self, predicate, timeout, what="condition"):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%s: %s not met within %.1fs (connects=%d ends=%d "
                                         "lb_errors=%d connect_errors=%d fatal=%s events=%d)"
                                         % (self.name, what, timeout, self.connects, self.ends,
                                            self.lb_errors, self.connect_errors, self.fatal,
                                            len(self.events)))
                self._cond.wait(min(remaining, 0.2))

    def snapshot(self):
        with self._cond:
            return list(self.events)


# --------------------------------------------------------------------------------------------
# SseFleet: many EventSource-like clients in one selector thread

class SseFleetClient:
    """State of one SseFleet client (the fleet does the I/O). Scenarios may subclass it with
    their own __slots__."""

    __slots__ = ("idx", "port", "target", "channels", "sock", "state", "buf", "last_id",
                 "sent_id", "events", "connects", "ends", "lb_errors", "conn_errors", "fatal",
                 "gen", "t_lost", "reconnect_times", "retry_ms", "closed_at", "t_connect",
                 "t_head", "conn_bytes", "positioned", "raw_head")

    def __init__(self, idx, port, target, channels=()):
        self.idx = idx
        self.port = port
        self.target = target
        self.channels = set(channels)
        self.sock = None
        self.state = "idle"         # idle, connecting, head, stream, closed
        self.buf = b""
        self.last_id = b""          # id of the last COMPLETE block
        self.sent_id = b""          # Last-Event-ID sent on the current stream
        self.events = []            # (time.time(), id, event, data) unless a handler is set
        self.connects = 0           # 200 streams opened
        self.ends = 0               # streams ended by the server
        self.lb_errors = 0          # 502/503/504 answers
        self.conn_errors = 0
        self.fatal = None           # any other status: the client gives up
        self.gen = 0
        self.t_lost = None
        self.reconnect_times = []   # stream lost -> next 200 head (seconds)
        self.retry_ms = 1000        # last `retry:` seen
        self.closed_at = None
        self.t_connect = 0.0        # monotonic time of the current connect
        self.t_head = 0.0           # monotonic time of the current 200 head
        self.conn_bytes = 0         # body bytes received on the current stream
        self.positioned = False     # got the position block on the current stream
        self.raw_head = b""


class SseFleet:
    """EventSource-like clients multiplexed on one selector thread, so Python is not the
    bottleneck on a small machine. A client sends GET client.target to client.port with
    Last-Event-ID = the id of the last COMPLETE block. 502/503/504 answers and connect errors
    are retried (after 0.3 s / 0.2 s) when reconnect is set; any other non-200 status is fatal.
    When the server ends a stream the client comes back after end_delay() (default
    min(retry, max_retry_ms)) when reconnect is set, else it stays closed.

    Events go to handler(client, wall_time, id, event, data) when given, else to client.events.
    Subclasses may override the hooks on_connect, on_stream, on_position, on_event, on_timer,
    on_tick and end_delay; schedule() and close_client() are theirs to use."""

    refuse_chunked = False          # treat a chunked 200 as fatal

    def __init__(self, clients, reconnect=True, max_retry_ms=1000, handler=None, name="fleet"):
        self.clients = clients
        self.reconnect = reconnect
        self.max_retry_ms = max_retry_ms
        self.handler = handler
        self.sel = selectors.DefaultSelector()
        self.timers = []            # heap of (when, tie, client, gen, action)
        self._tie = 0
        self.stop_ev = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    # -- control (test thread)
    def start(self, spread=0.5, delays=None):
        """First connects spread evenly over `spread` seconds, or after the given delays."""
        now = time.monotonic()
        n = len(self.clients)
        for i, c in enumerate(self.clients):
            d = delays[i] if delays is not None else spread * i / max(1, n)
            self.schedule(now + d, c, "connect")
        self.thread.start()
        return self

    def shutdown(self):
        self.stop_ev.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def wait(self, predicate, timeout, what):
        wait_until(lambda: self.error is not None or predicate(), timeout, interval=0.1,
                   message=what)
        if self.error is not None:
            raise AssertionError("fleet loop crashed: %r" % (self.error,))

    # -- hooks
    def on_connect(self, c):
        """A new connection attempt starts."""

    def on_stream(self, c, now):
        """A 200 head arrived (c.connects counts it); called before the first body bytes."""

    def on_position(self, c):
        """A position block arrived."""

    def on_event(self, c, now, wall, bid, ev, payload):
        if self.handler is not None:
            self.handler(c, wall, bid, ev, payload)
        else:
            c.events.append((wall, bid, ev, payload))

    def on_timer(self, c, action, now):
        """A timer with an action other than "connect" is due."""

    def on_tick(self, now):
        """Once per loop turn."""

    def end_delay(self, c):
        return min(c.retry_ms, self.max_retry_ms) / 1000.0

    # -- loop internals
    def schedule(self, when, c, action):
        self._tie += 1
        heapq.heappush(self.timers, (when, self._tie, c, c.gen, action))

    def _connect(self, c):
        c.gen += 1
        c.buf = b""
        c.state = "connecting"
        c.positioned = False
        c.conn_bytes = 0
        c.t_head = 0.0
        self.on_connect(c)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c.sock = s
        c.t_connect = time.monotonic()
        rc = s.connect_ex((HOST, c.port))
        if rc not in (0, errno.EINPROGRESS):
            self._retry(c, conn_error=True)
            return
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def close_client(self, c):
        if c.sock is not None:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            try:
                c.sock.close()
            except OSError:
                pass
            c.sock = None
        c.gen += 1
        c.state = "idle"

    def _retry(self, c, conn_error=False, lb_error=False, delay=0.2):
        if conn_error:
            c.conn_errors += 1
        if lb_error:
            c.lb_errors += 1
        self.close_client(c)
        if c.t_lost is None:
            c.t_lost = time.monotonic()
        if self.reconnect and not self.stop_ev.is_set():
            self.schedule(time.monotonic() + delay, c, "connect")
        else:
            c.closed_at = time.monotonic()
            c.state = "closed"

    def _send_request(self, c):
        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._retry(c, conn_error=True)
            return
        hdrs = "Host: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n" % (
            HOST, c.port)
        c.sent_id = c.last_id
        if c.last_id:
            hdrs += "Last-Event-ID: %s\r\n" % c.last_id.decode()
        try:
            c.sock.send(("GET %s HTTP/1.1\r\n%s\r\n" % (c.target, hdrs)).encode())
        except OSError:
            self._retry(c, conn_error=True)
            return
        c.state = "head"
        self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def _readable(self, c, now):
        try:
            chunk = c.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            if c.state == "stream":
                c.ends += 1
                c.t_lost = now
                self.close_client(c)
                if self.reconnect and not self.stop_ev.is_set():
                    self.schedule(now + self.end_delay(c), c, "connect")
                else:
                    c.closed_at = now
                    c.state = "closed"
            else:
                self._retry(c, conn_error=True)
            return
        if c.state != "head":
            c.conn_bytes += len(chunk)
            self._feed(c, chunk, now)
            return
        c.buf += chunk
        i = c.buf.find(b"\r\n\r\n")
        if i < 0:
            return
        head, rest = c.buf[:i], c.buf[i + 4:]
        c.buf = b""
        c.raw_head = head
        status = int(head.split(b" ", 2)[1])
        if status in (502, 503, 504):
            self._retry(c, lb_error=True, delay=0.3)
            return
        if status != 200 or (self.refuse_chunked and b"chunked" in head.lower()):
            c.fatal = "%d %r" % (status, head[:200])
            self.close_client(c)
            c.state = "closed"
            return
        c.state = "stream"
        c.connects += 1
        c.t_head = now
        c.conn_bytes = len(rest)
        if c.t_lost is not None:
            c.reconnect_times.append(now - c.t_lost)
            c.t_lost = None
        self.on_stream(c, now)
        if rest:
            self._feed(c, rest, now)

    def _feed(self, c, data, now):
        buf = c.buf + data
        if b"\n\n" not in buf:
            c.buf = buf
            return
        blocks = buf.split(b"\n\n")
        c.buf = blocks.pop()
        wall = time.time()
        for blk in blocks:
            ev = payload = bid = None
            for line in blk.split(b"\n"):
                if not line or line[0] == 58:        # ':' comment
                    continue
                name, _, val = line.partition(b":")
                if val[:1] == b" ":
                    val = val[1:]
                if name == b"data":
                    payload = val if payload is None else payload + b"\n" + val
                elif name == b"id":
                    bid = val
                elif name == b"event":
                    ev = val
                elif name == b"retry" and val.isdigit():
                    c.retry_ms = int(val)
            if bid is not None:
                c.last_id = bid                      # the block is complete: commit its id
            if payload is None or ev == POSITION_EVENT.encode():
                if bid is not None:
                    c.positioned = True
                    self.on_position(c)
                continue
            self.on_event(c, now, wall, bid, ev, payload)

    def _run(self):
        try:
            while not self.stop_ev.is_set():
                now = time.monotonic()
                while self.timers and self.timers[0][0] <= now:
                    _, _, c, gen, action = heapq.heappop(self.timers)
                    if gen != c.gen or c.fatal:
                        continue
                    if action == "connect":
                        self._connect(c)
                    else:
                        self.on_timer(c, action, now)
                timeout = 0.05
                if self.timers:
                    timeout = max(0.0, min(timeout, self.timers[0][0] - now))
                for key, _ in self.sel.select(timeout):
                    c = key.data
                    if c.state == "connecting":
                        self._send_request(c)
                    elif c.sock is not None:
                        self._readable(c, time.monotonic())
                self.on_tick(now)
        except Exception as exc:  # noqa: BLE001
            self.error = exc
            raise
        finally:
            for c in self.clients:
                self.close_client(c)
            self.sel.close()


# --------------------------------------------------------------------------------------------
# Topology (scripts/topology)

class Topology:
    """redis-server + 3 gateways + haproxy on loopback, driven by scripts/topology."""

    def __init__(self, workdir=None, binary=None, script=None, env=None):
        self._own_dir = workdir is None
        self.extra_env = dict(env or {})  # e.g. SSEGW_ADMIN_API_KEY: gateways and haproxy see it
        self.dir = workdir or tempfile.mkdtemp(prefix="ssegw-topo-")
        self.binary = binary or gateway_binary()
        self.script = script or str(REPO_ROOT / "scripts" / "topology")
        self.env = {}
        self.started = False

    def _run(self, *args, timeout=90):
        env = dict(os.environ)
        env.update(self.extra_env)
        env["SSEGW_BINARY"] = self.binary
        proc = subprocess.run(["bash", self.script] + list(args), env=env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise AssertionError("scripts/topology %s failed (%d):\n%s\n%s"
                                 % (" ".join(args), proc.returncode, out, self.logs()))
        return out

    def start(self, timeout=90):
        self.started = True
        out = self._run("start", self.dir, timeout=timeout)
        self.env = self.read_env()
        return out

    def read_env(self):
        env = {}
        with open(os.path.join(self.dir, "topology.env")) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#") or "=" not in line:
                    continue
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip().strip('"').strip("'")
        return env

    def stop(self, timeout=60):
        if not self.started:
            return
        try:
            self._run("stop", self.dir, timeout=timeout)
        finally:
            self.started = False
            self._kill_leftovers()
        self.assert_no_sanitizer_report()

    def assert_no_sanitizer_report(self):
        """Fails when a gateway log holds a sanitizer report (sanitizer builds of scripts/test)."""
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if name.startswith("gw") and name.endswith(".log"):
                path = os.path.join(self.dir, name)

                def read(path=path):
                    with open(path, "rb") as f:
                        return f.read().decode("utf-8", "replace")
                assert_no_sanitizer_report(read, name)

    def _kill_leftovers(self):
        """Belt and braces: SIGKILL every PID recorded in topology.env."""
        try:
            env = self.read_env()
        except OSError:
            return
        for k, v in env.items():
            if k.endswith("_PID") and v.isdigit():
                try:
                    os.kill(int(v), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def kill(self, n):
        """kill -9 gateway n (1-based)."""
        return self._run("kill", str(n), self.dir, timeout=30)

    def cleanup(self):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- accessors
    @property
    def lb_port(self):
        return int(self.env["LB_PORT"])

    @property
    def redis_port(self):
        return int(self.env["REDIS_PORT"])

    def gw_port(self, n):
        return int(self.env["GW%d_PORT" % n])

    def gw_admin(self, n):
        return int(self.env["GW%d_ADMIN" % n])

    def gw_pid(self, n):
        return int(self.env["GW%d_PID" % n])

    @property
    def count(self):
        return int(self.env.get("GW_COUNT", 3))

    def metrics(self, n):
        status, _, body = http_get(self.gw_admin(n), "/metrics")
        if status != 200:
            raise AssertionError("gw%d /metrics answered %s" % (n, status))
        return Metrics(body.decode("utf-8", "replace"))

    def redis(self, timeout=10.0):
        return RespClient(self.redis_port, timeout=timeout)

    def logs(self, n=3000):
        out = []
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if name.endswith(".log"):
                try:
                    with open(os.path.join(self.dir, name), "rb") as f:
                        out.append("---- %s ----\n%s" % (
                            name, f.read()[-n:].decode("utf-8", "replace")))
                except OSError:
                    pass
        return "\n".join(out)


# --------------------------------------------------------------------------------------------
# unittest base

# What AddressSanitizer, UndefinedBehaviorSanitizer, ThreadSanitizer and LeakSanitizer print:
# a gateway built with scripts/test's sanitizer stages must never print any of it.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")


def assert_no_sanitizer_report(log_text, label):
    text = log_text()
    for marker in SANITIZER_MARKERS:
        at = text.find(marker)
        if at >= 0:
            raise AssertionError("%s: sanitizer report in its log:\n%s"
                                 % (label, text[max(0, at - 200):at + 6000]))


class GatewayTestCase(unittest.TestCase):
    """start_gateway / start_redis / sse register their cleanup; on failure the logs of the
    processes this test started are printed to stderr (always with SSEGW_TEST_DUMP_LOGS=1)."""

    def setUp(self):
        super().setUp()
        require_binary(self)
        self.tmp = tempfile.mkdtemp(prefix="ssegw-test-")
        self._log_sources = []
        self.addCleanup(self._cleanup_tmp)

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return True
        if hasattr(outcome, "success"):
            return not outcome.success
        errors = getattr(outcome, "errors", [])
        return any(exc for _, exc in errors)

    def _cleanup_tmp(self):
        failed = self._failed()
        if failed or os.environ.get("SSEGW_TEST_DUMP_LOGS"):
            for label, fn in self._log_sources:
                try:
                    text = fn()
                except Exception as exc:  # noqa: BLE001
                    text = "<no log: %r>" % exc
                sys.stderr.write("\n==== %s (%s) ====\n%s\n" % (label, self.id(), text[-20000:]))
        if failed and os.environ.get("SSEGW_TEST_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_redis(self, **kw):
        r = RedisServer(workdir=self.tmp, **kw)
        self.addCleanup(r.kill)
        r.start()
        self._log_sources.append(("redis-server :%d" % r.port, r.log_tail))
        return r

    def start_gateway(self, config=None, redis=None, wait="ready", **kw):
        url = redis.url if isinstance(redis, RedisServer) else (redis or "none")
        gw = Gateway(config=config, redis_url=url, workdir=self.tmp, **kw)
        # Cleanups run last-in first-out: the log is checked after the process is gone.
        self.addCleanup(assert_no_sanitizer_report, gw.log_text, "gateway :%d" % gw.port)
        self.addCleanup(gw.kill)
        self._log_sources.append(("gateway :%d" % gw.port, gw.log_text))
        gw.start(wait=wait)
        return gw

    def sse(self, port, **kw):
        """An SseClient closed at cleanup (closing happens before the processes are killed)."""
        c = SseClient(port, **kw)
        self.addCleanup(c.close)
        return c


# --------------------------------------------------------------------------------------------
# History and resume helpers (positions, FCALL sse_publish, histogram quantiles)

import re as _re

POSITION_RE = _re.compile(r"^([0-9a-f]+)\.([0-9]+)\.([0-9]+)$")


def parse_position(text):
    """'<epoch hex>.<global seq>.<unix seconds>' -> (epoch, seq, seconds), or None."""
    m = POSITION_RE.match(text or "")
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))


def position_seq(text):
    """The global sequence number of a position (AssertionError when it is not one)."""
    p = parse_position(text)
    if p is None:
        raise AssertionError("not a resume position: %r" % (text,))
    return p[1]


def compact_json(payload):
    return payload if isinstance(payload, (str, bytes)) else json.dumps(
        payload, separators=(",", ":"))


def fcall_publish(client, channel, payload):
    """FCALL sse_publish 1 <channel> <payload> on a RespClient; returns the position (str)."""
    reply = client.call("FCALL", "sse_publish", "1", channel, compact_json(payload))
    return _s(reply)


def histogram_buckets(metrics_list, name):
    """Sum the cumulative buckets of histogram `name` over several Metrics:
    sorted [(upper bound, cumulative count)] (the +Inf bucket last)."""
    acc = {}
    for m in metrics_list:
        for labels, value in m.series(name + "_bucket"):
            le = labels.get("le")
            if le is None:
                continue
            bound = float("inf") if le in ("+Inf", "Inf", "inf") else float(le)
            acc[bound] = acc.get(bound, 0.0) + value
    return sorted(acc.items())


def histogram_quantile(buckets, q):
    """Prometheus-style quantile (linear inside the bucket) from histogram_buckets() output;
    nan when empty. A quantile in the +Inf bucket answers the largest finite bound."""
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


class FailureAwareMixin:
    """Put before GatewayTestCase in the bases: makes the failure log dump work on Python
    3.11+, where unittest resets outcome.success for each cleanup (so GatewayTestCase._failed
    answers False there). Looks for this test (or one of its subtests) in the result."""

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is not None:
            for test, _ in list(getattr(result, "failures", [])) + \
                    list(getattr(result, "errors", [])):
                if test is self or getattr(test, "test_case", None) is self:
                    return True
        return super()._failed()

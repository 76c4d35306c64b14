"""`sse-gateway --health-check`, the probe of the container image's HEALTHCHECK: it resolves the
same config as the server (file, SSEGW_* environment, flags), GETs /readyz on that admin port
and exits 0 only on 200: 1 when the gateway is not ready (Redis gone, draining) or does not
answer, 2 when the config itself is invalid."""

import json
import os
import signal
import socket
import subprocess
import time
import unittest

from ssegw_testlib import GatewayTestCase, free_port, gateway_binary, wait_until


class HealthCheckTest(GatewayTestCase):
    def probe(self, *args, env=None, timeout=10):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SSEGW_")}
        clean.update(env or {})
        t0 = time.monotonic()
        p = subprocess.run([self.binary(), "--health-check", *args], capture_output=True,
                           text=True, env=clean, timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, (p.stdout + p.stderr).strip(), time.monotonic() - t0

    def binary(self):
        return gateway_binary()

    def test_ready_gateway_is_0_and_redis_loss_is_1_through_the_config_and_environment(self):
        redis = self.start_redis()
        gw = self.start_gateway(redis=redis)
        # the gateway's own config file, as the image's HEALTHCHECK finds it (SSEGW_CONFIG)
        code, out, _ = self.probe(env={"SSEGW_CONFIG": gw.config_path,
                                       "SSEGW_ADMIN_PORT": str(gw.admin_port)})
        self.assertEqual(code, 0, out)
        self.assertIn("200", out)
        # an admin host of 0.0.0.0 (the compose file's) is probed on loopback
        cfg = os.path.join(self.tmp, "wildcard.json")
        with open(cfg, "w") as f:
            json.dump({"server": {"admin_host": "0.0.0.0", "admin_port": gw.admin_port},
                       "auth": {"mode": "none"}}, f)
        code, out, _ = self.probe("--config", cfg)
        self.assertEqual(code, 0, out)

        redis.stop()
        wait_until(lambda: gw.readyz() == 503, 10, message="/readyz did not turn 503")
        code, out, _ = self.probe(env={"SSEGW_CONFIG": gw.config_path,
                                       "SSEGW_ADMIN_PORT": str(gw.admin_port)})
        self.assertEqual(code, 1, out)
        self.assertIn("503", out)

    def test_draining_gateway_is_1(self):
        gw = self.start_gateway({"server": {"drain_seconds": 3}})
        self.assertEqual(self.probe("--config", gw.config_path,
                                    env={"SSEGW_ADMIN_PORT": str(gw.admin_port)})[0], 0)
        gw.signal(signal.SIGTERM)
        wait_until(lambda: gw.readyz() != 200, 2, message="/readyz stayed 200 after SIGTERM")
        code, out, _ = self.probe("--config", gw.config_path,
                                  env={"SSEGW_ADMIN_PORT": str(gw.admin_port)})
        self.assertEqual(code, 1, out)

    def test_nothing_listening_is_1_and_a_silent_listener_is_1_within_the_timeout(self):
        cfg = os.path.join(self.tmp, "gw.json")
        with open(cfg, "w") as f:
            json.dump({"auth": {"mode": "none"}}, f)
        code, out, _ = self.probe("--config", cfg, "--admin-port", str(free_port()))
        self.assertEqual(code, 1, out)
        self.assertIn("refused", out.lower())

        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts (kernel backlog) but never answers
        self.addCleanup(silent.close)
        code, out, took = self.probe("--config", cfg, "--admin-port",
                                     str(silent.getsockname()[1]))
        self.assertEqual(code, 1, out)
        self.assertLess(took, 5.0, "the probe must give up after its 2 s bound")
        self.assertGreater(took, 1.5, out)

    def test_invalid_config_is_2(self):
        code, out, _ = self.probe("--config", os.path.join(self.tmp, "missing.json"))
        self.assertEqual(code, 2, out)


if __name__ == "__main__":
    unittest.main()

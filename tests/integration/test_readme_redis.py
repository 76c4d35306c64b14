"""The README's Redis configurations are code: each JSON snippet under "Redis Sentinel", "Redis
Cluster" and "Managed Redis" is written to a file as it stands (only a CA file path, which must exist, points
at a file the test makes) and must pass `sse-gateway --check-config`, with the secret given the
way the README says (SSEGW_REDIS_PASSWORD) and masked in the output (and a JWT secret, which
any real configuration has)."""

import json
import os
import re
import subprocess
import tempfile
import unittest

from ssegw_testlib import REPO_ROOT, gateway_binary


def snippets(section):
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("\n### %s\n" % section)
    end = text.find("\n## ", start + 1)
    nxt = text.find("\n### ", start + 1)
    end = min(x for x in (end, nxt) if x != -1)
    return re.findall(r"```json\n(.*?)```", text[start:end], re.S)


class ReadmeRedisConfigTest(unittest.TestCase):

    def check(self, snippet):
        doc = json.loads(snippet)
        with tempfile.TemporaryDirectory(prefix="ssegw-readme-redis-") as tmp:
            ca = doc.get("redis", {}).get("tls", {}).get("ca_file")
            if ca:
                stand_in = os.path.join(tmp, os.path.basename(ca))
                with open(stand_in, "w") as f:
                    f.write("-----BEGIN CERTIFICATE-----\n")
                snippet = snippet.replace(ca, stand_in)
            path = os.path.join(tmp, "gateway.json")
            with open(path, "w") as f:
                f.write(snippet)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SSEGW_")}
            env["SSEGW_REDIS_PASSWORD"] = "readme-secret"
            env["SSEGW_JWT_SECRET"] = "the rest of the user's configuration"
            proc = subprocess.run([gateway_binary(), "--config", path, "--check-config"],
                                  capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr + snippet)
        effective = json.loads(proc.stdout)
        self.assertNotIn("readme-secret", proc.stdout)
        self.assertEqual(effective["redis"]["password"], "***")
        return effective

    def test_sentinel_snippet(self):
        found = snippets("Redis Sentinel")
        self.assertEqual(len(found), 1)
        effective = self.check(found[0])
        self.assertEqual(effective["redis"]["mode"], "sentinel")
        self.assertEqual(effective["redis"]["sentinel"]["master_name"], "mymaster")

    def test_managed_snippets(self):
        found = snippets("Managed Redis")
        self.assertEqual(len(found), 3)
        for snippet in found:
            with self.subTest(snippet=snippet):
                effective = self.check(snippet)
                self.assertTrue(effective["redis"]["url"].startswith("rediss://"))

    def test_cluster_snippet(self):
        found = snippets("Redis Cluster")
        self.assertEqual(len(found), 1)
        effective = self.check(found[0])
        self.assertEqual(effective["redis"]["mode"], "cluster")
        self.assertTrue(effective["history"]["enabled"])

    def test_cluster_history_bounds_topics_clearly(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSEGW_")}
        env["SSEGW_JWT_SECRET"] = "s3cret"
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "gateway.json")
            with open(path, "w") as f:
                json.dump({"redis": {"mode": "cluster", "url": "rediss://cfg.example:6379"},
                           "sse": {"max_topics": 100}}, f)
            proc = subprocess.run([gateway_binary(), "--config", path, "--check-config"],
                                  capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("sse.max_topics: must be at most 62 with redis.mode \"cluster\"",
                      proc.stderr)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (committed; rerun after changing an input
layout). Seeds are small, realistic inputs in each target's layout, so the fuzzer starts from
the shapes the gateway really sees instead of rediscovering them byte by byte."""

import base64
import hashlib
import hmac
import json
import pathlib
import shutil

root = pathlib.Path(__file__).resolve().parent / "corpus"


def write(target, seeds):
    d = root / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for name, data in seeds.items():
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- query: request targets of GET /events ----------------------------------------------------
write("query", {
    "one_topic": "/events?topic=news",
    "two_topics": "/events?topic=news&topic=chat.room1",
    "token": "/events?topic=orders&token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "encoded": "/events?topic=caf%C3%A9&topic=a%2Bb+c&user=alice",
    "last_event_id": "/events?topic=news&lastEventId=6931d2f5a1b2c.1042.1764594933",
    "dup_and_buster": "/events?topic=a&topic=a&_=1712345678901&topic=b",
    "fragment": "/events?topic=x#frag",
    "bad_escape": "/events?topic=%zz",
    "nul_escape": "/events?topic=a%00b",
    "empty_pieces": "/events?&&topic=&=x&topic",
    "bare_query": "topic=news&token=abc",
    "many": "/events?" + "&".join(f"topic=t{i}" for i in range(40)),
})


# --- frame: [limit byte][forced id length][forced id][payload] --------------------------------
def frame(payload, forced_id="", limit=0xFF):
    fid = forced_id.encode()
    return bytes([limit, len(fid)]) + fid + (payload.encode() if isinstance(payload, str) else payload)


write("frame", {
    "text": frame("hello world"),
    "multiline": frame("line one\nline two\r\nline three\rend"),
    "object": frame('{"event":"price","id":"42","retry":1500,"data":{"sym":"ACME","px":12.5}}'),
    "object_string_data": frame('{"event":"chat","data":"hi\\nthere\\r\\nbye"}'),
    "forced_id": frame('{"id":"mine","data":[1,2,3]}', "6931d2f5a1b2c.1042.1764594933"),
    "numeric_id": frame('{"id":17,"data":null}'),
    "bad_event": frame('{"event":"a\\nb","data":1}'),
    "bad_retry": frame('{"retry":-1,"data":1}'),
    "null_fields": frame('{"event":null,"id":null,"retry":null,"data":"x"}'),
    "too_large": frame("x" * 200, limit=1),
    "bad_forced_id": frame("x", "a\r\nb"),
    "deep": frame('{"data":' + "[" * 70 + "]" * 70 + "}"),
    "no_data_member": frame('{"event":"e","payload":1}'),
    "nul_in_data": frame(b"a\x00b\ndata: injected"),
})


# --- position: resume ids and enveloped messages ----------------------------------------------
write("position", {
    "position": "6931d2f5a1b2c.1042.1764594933",
    "zero": "0.0.0",
    "max": "ffffffffffffffffffffffff.18446744073709551615.9223372036854775807",
    "overflow": "a.18446744073709551616.1",
    "leading_zero": "a.01.1",
    "upper_hex": "ABC.1.1",
    "envelope": "\x1e6931d2f5a1b2c.1042.1764594933\n{\"data\":\"hello\"}",
    "envelope_empty_payload": "\x1e1.2.3\n",
    "envelope_no_newline": "\x1e1.2.3",
    "plain_message": "{\"event\":\"x\",\"data\":1}",
})


# --- cursor: cluster-mode composite cursors and cluster envelopes -----------------------------
write("cursor", {
    "one": "2:3kq1.mif3dyib.h",
    "three": "2:3kq1.mif3dyib.h,l0k.mif3dy00.0,a.0.0",
    "max_seq": "2:mh33.3w5e11264sgsf.3w5e11264sgsf",
    "overflow": "2:1.1.3w5e11264sgsg",
    "duplicate_hash": "2:a.1.1,a.2.2",
    "single_mode_id": "6931d2f5a1b2c.1042.1764594933",
    "envelope": "\x1e2:mif3dyib.h\n{\"data\":\"hello\"}",
    "envelope_no_newline": "\x1e2:1.1",
})


# --- jwt: [mode][bytes] -------------------------------------------------------------------------
def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims, header=None, secret=b"fuzz-secret"):
    h = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


far = 4102444800  # 2100-01-01
good = token({"sub": "alice", "topics": ["news", "chat.*"], "exp": far})
write("jwt", {
    "raw_good": "\x00" + good,
    "raw_strict": "\x00" + token({"sub": "bob", "iss": "https://issuer.example", "aud": ["x", "sse"], "exp": far}),
    "raw_expired": "\x00" + token({"sub": "alice", "exp": 1000}),
    "raw_wrong_key": "\x00" + token({"sub": "alice"}, secret=b"other"),
    "raw_alg_none": "\x00" + token({"sub": "alice"}, header={"alg": "none"}).rsplit(".", 1)[0] + ".",
    "bearer": "\x01Bearer " + good,
    "bearer_lower_tab": "\x01bearer\t" + token({"sub": 42, "topics": ["*"]}),
    "basic": "\x01Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    "cookie": "\x02theme=dark; sse_token=" + good + "; other=1",
    "cookie_quoted": "\x02sse_token=\"" + good + "\"",
    "query": "\x03" + good,
    "signed_claims": "\x04" + '{"alg":"HS256","typ":"JWT"}\n{"sub":"carol","topics":["a","b*"],"exp":4102444800,"nbf":1}',
    "signed_odd_types": "\x04" + '{"alg":"HS256"}\n{"sub":1.5,"topics":"all","exp":"soon","iss":7}',
    "signed_no_header": "\x04" + '{"sub":"dave","aud":"sse","iss":"https://issuer.example"}',
    "user_none": "\x05alice",
})


# --- resp: [chunk seed][RESP stream] ------------------------------------------------------------
def bulk(s):
    b = s.encode() if isinstance(s, str) else s
    return b"$%d\r\n%s\r\n" % (len(b), b)


def arr(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def integer(n):
    return b":%d\r\n" % n


history = arr(bulk("6931d2f5a1b2c"), bulk("1044"), bulk("1764594940"), integer(0),
              integer(0), arr(bulk("1043"), bulk("1764594933"), bulk('{"data":"a"}')),
              integer(1), arr(bulk("1042"), bulk("1764594930"), bulk('{"data":"b"}'),
                              bulk("1044"), bulk("1764594940"), bulk("plain text")))
write("resp", {
    "subscribe": b"\x05" + arr(bulk("subscribe"), bulk("sse:topic:news"), integer(1)),
    "message": b"\x01" + arr(bulk("message"), bulk("sse:user:42"), bulk('{"data":"hi"}')),
    "pmessage": b"\x11" + arr(bulk("pmessage"), bulk("sse:*"), bulk("sse:broadcast"), bulk("\x1e1.2.3\nx")),
    "status_ok": b"\x03+OK\r\n+PONG\r\n",
    "error": b"\x07-ERR Function not found\r\n",
    "nil": b"\x02$-1\r\n*-1\r\n",
    "integer": b"\x09:1042\r\n:-7\r\n",
    "nested": b"\x20" + arr(arr(arr(integer(1))), bulk(""), b"$-1\r\n"),
    "history": b"\x0d" + history,
    "history_fresh": b"\x04" + arr(bulk("6931d2f5a1b2c"), bulk("0"), bulk("1764594940"), integer(0)),
    "history_unknown": b"\x04" + arr(bulk("ab"), bulk("9"), bulk("1"), integer(1)),
    "huge_bulk_header": b"\x01$99999999999\r\n",
    "bad_type": b"\x01?what\r\n",
    "url": b"\x00redis://user:p%40ss@[::1]:6380/2",
    "url_plain": b"\x00redis://127.0.0.1:6379",
})


# --- config: JSON configuration files -------------------------------------------------------------
repo = root.parents[2]
write("config", {
    "gateway": (repo / "config" / "gateway.json").read_text(),
    "topology": (repo / "config" / "topology.json").read_text(),
    "empty": "{}",
    "jwt": json.dumps({"auth": {"mode": "jwt", "jwt": {"secret": "s3cret", "algorithms": ["HS256"],
                                                       "audience": "sse", "issuer": "me"}}}),
    "rs256_no_key": json.dumps({"auth": {"mode": "jwt", "jwt": {"algorithms": ["RS256"]}}}),
    "cors": json.dumps({"cors": {"allowed_origins": ["https://app.example", "*"], "allow_credentials": True}}),
    "redis_password": json.dumps({"redis": {"url": "redis://:hunter2@10.0.0.1:6380/1", "prefix": "p:"}}),
    "standalone": json.dumps({"redis": {"url": "none"}, "history": {"enabled": True, "max_len": 1}}),
    "wrong_types": json.dumps({"server": {"port": "8080", "threads": -1}, "sse": {"path": 5}}),
    "unknown_key": json.dumps({"server": {"prot": 1}}),
    "big_numbers": json.dumps({"sse": {"max_queue_bytes": 18446744073709551615, "max_event_bytes": 1e300}}),
    "not_object": "[1,2,3]",
})


# --- control: POST /disconnect bodies and <prefix>control messages ----------------------------
write("control", {
    "user": '{"user":"42","reason":"logged out"}',
    "revoke": '{"user":"42","reason":"banned","revoke":true}',
    "jti": '{"jti":"4f1c2a","reason":"token leaked"}',
    "jti_user": '{"user":"42","jti":"4f1c2a"}',
    "multiline": '{"user":"42","reason":"line one\\nline two"}',
    "unknown": '{"user":"42","extra":1}',
    "message": '{"user":"42","reason":"banned","revoke":true,"at":1764594933,"until":1764681333}',
    "message_jti": '{"jti":"x","reason":"r","at":1,"until":2}',
    "not_object": '["user","42"]',
    "nul": '{"user":"a\\u0000b"}',
    "regression-until-without-revoke":
        '{"user":"42","reason":"banned","revlke":true,"at":1764594933,"until":1764681333}',
})


# --- presence: GET /presence queries, and the presence functions' RESP replies ------------------
write("presence", {
    "one": "user=42",
    "two": "user=42&user=7",
    "dup": "user=a&user=b&user=a",
    "encoded": "user=caf%C3%A9&user=a+b&user=a%2Bb",
    "other_params": "x=1&user=u&_=1712345678901",
    "empty": "user=",
    "bad_escape": "user=%zz",
    "nul": "user=a%00b",
    "many": "&".join(f"user=u{i}" for i in range(50)),
    "apply_reply": "*5\r\n:1\r\n:2\r\n:0\r\n:0\r\n:1\r\n",
    "get_reply": "*1\r\n*2\r\n:3\r\n:2\r\n",
    "get_reply_3": "*3\r\n*2\r\n:3\r\n:2\r\n*2\r\n:0\r\n:0\r\n*2\r\n:1\r\n:1\r\n",
    "error_reply": "-ERR Function not found\r\n",
    "negative": "*5\r\n:1\r\n:-2\r\n:0\r\n:0\r\n:0\r\n",
})

"""The webhook channel plugin, black-box, with curl against a running vocd.

Every reply the channel documents (docs/webhook.md) is provoked here: 201 once the case is
durable, 200 with the same id for a repeat (Idempotency-Key or mapped external_id), 400 for
bad JSON / invalid UTF-8 / missing or wrongly typed fields, 401 for every way a signature or
timestamp can be wrong, 404 unknown source, 405 wrong method, 413 too large, and 503 +
Retry-After both when the core's writer is backed up and when the plugin's own bound on
waiting requests is reached. Also: the contrib/webhook examples' post.sh scripts work as
documented, and SIGHUP brings new sources and secrets into effect.

Signatures are computed here with Python's hmac module, independently of the plugin's C code.
"""

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocd_bin  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("VOC_BUILD_DIR") or os.path.dirname(os.path.dirname(vocd_bin()))
PLUGIN_DIR = os.path.join(BUILD_DIR, "plugins")
EXAMPLES = os.path.join(SOURCE_DIR, "contrib", "webhook")
EXAMPLE_NAMES = ("webform", "review", "chat")

FORM_SECRET = "form-secret-7d41"
RAW_SECRET = "raw-secret-c2e9"

# The test's own sources, as YAML list items (flow style) under `sources:`.
TEST_SOURCES = [
    {"name": "form", "secret": FORM_SECRET,
     "map": {"external_id": "/id", "subject": "/title", "text": "/content",
             "customer.name": "/user/name", "fields.rating": "/rating"}},
    {"name": "raw", "secret": RAW_SECRET, "channels": ["raw", "web"]},
    {"name": "open"},
]


def example_sources():
    """The examples' source.yaml files, indented to sit under `sources:`."""
    text = ""
    for name in EXAMPLE_NAMES:
        with open(os.path.join(EXAMPLES, name, "source.yaml"), encoding="utf-8") as f:
            for line in f.read().splitlines():
                text += ("      " + line if line.strip() else "") + "\n"
    return text


def plugin_yaml(sources, extra_sources_yaml="", **options):
    lines = ["plugin_dir: %s" % json.dumps(PLUGIN_DIR), "plugins:", "  - name: webhook"]
    for key, value in options.items():
        lines.append("    %s: %s" % (key, json.dumps(value)))
    lines.append("    sources:")
    for s in sources:
        lines.append("      - " + json.dumps(s, ensure_ascii=False))
    return "\n".join(lines) + "\n" + extra_sources_yaml


def sign(secret, body, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Voc-Timestamp": ts, "X-Voc-Signature": "sha256=" + mac}


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body.decode("utf-8"))
        except ValueError:
            self.json = None

    def error_code(self):
        return (self.json or {}).get("error", {}).get("code")

    def __repr__(self):
        return "<%d %r>" % (self.status, self.raw[:300])


def curl(url, body=None, headers=None, method="POST"):
    """One request with the curl command line tool; the body is sent byte for byte."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["curl", "-sS", "-X", method, "-D", os.path.join(tmp, "h"),
                "-o", os.path.join(tmp, "b"), "-w", "%{http_code}", "-H", "Expect:"]
        for k, v in (headers or {}).items():
            args += ["-H", "%s: %s" % (k, v)]
        if body is not None:
            with open(os.path.join(tmp, "in"), "wb") as f:
                f.write(body)
            args += ["-H", "Content-Type: application/json",
                     "--data-binary", "@" + os.path.join(tmp, "in")]
        args.append(url)
        cp = subprocess.run(args, capture_output=True, timeout=60)
        if cp.returncode != 0:
            raise AssertionError("curl failed (%d): %s" % (cp.returncode, cp.stderr.decode()))
        with open(os.path.join(tmp, "h"), "rb") as f:
            head = f.read().decode("latin-1")
        with open(os.path.join(tmp, "b"), "rb") as f:
            data = f.read()
    headers = {}
    for line in head.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return Reply(int(cp.stdout), headers, data)


class Webhook(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(PLUGIN_DIR, "webhook.so")):
            raise AssertionError("webhook.so is not built in %s" % PLUGIN_DIR)
        cls.v = Vocd(config_extra=plugin_yaml(TEST_SOURCES, example_sources(),
                                              max_body_size="4KiB"))

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def post(self, source, body, headers=None, secret=None, ts=None, method="POST"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode()
        h = dict(headers or {})
        if secret:
            h.update(sign(secret, body, ts))
        return curl(self.v.url + "/hooks/" + source, body, h, method)

    def case(self, case_id):
        status, _, body = self.v.request("GET", "/api/v1/cases/%d" % case_id)
        self.assertEqual(status, 200)
        return body

    def assert_error(self, r, status, code, needle=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.error_code(), code, r)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        if needle:
            self.assertIn(needle, r.json["error"]["message"])

    # ---- 201 / 200 -------------------------------------------------------------------------

    def test_201_mapped_then_200_for_the_same_external_id(self):
        payload = {"id": 90001, "title": "网页反馈", "content": "提交按钮没有反应",
                   "user": {"name": "张伟", "age": 31}, "rating": 2}
        r = self.post("form", payload, secret=FORM_SECRET)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["created"], True)
        case_id = r.json["id"]
        case = self.case(case_id)
        self.assertEqual(case["channel"], "form")  # the source's name
        self.assertEqual(case["external_id"], "90001")
        self.assertEqual(case["subject"], "网页反馈")
        self.assertEqual(case["text"], "提交按钮没有反应")
        self.assertEqual(case["customer"]["name"], "张伟")
        self.assertEqual(case["fields"], {"rating": 2})  # unmapped parts are not kept
        # A sender retrying (new timestamp, new signature, same content): the same case.
        time.sleep(1)
        r = self.post("form", payload, secret=FORM_SECRET)
        self.assertEqual((r.status, r.json), (200, {"id": case_id, "created": False}))

    def test_201_then_200_by_idempotency_key(self):
        body = {"text": "按键失灵", "customer": {"name": "李娜"}}
        r1 = self.post("raw", body, {"Idempotency-Key": "order-77-msg-1"}, secret=RAW_SECRET)
        self.assertEqual(r1.status, 201, r1)
        r2 = self.post("raw", body, {"Idempotency-Key": "order-77-msg-1"}, secret=RAW_SECRET)
        self.assertEqual((r2.status, r2.json["id"], r2.json["created"]),
                         (200, r1.json["id"], False))
        r3 = self.post("raw", body, {"Idempotency-Key": "order-77-msg-2"}, secret=RAW_SECRET)
        self.assertEqual(r3.status, 201)
        self.assertNotEqual(r3.json["id"], r1.json["id"])
        case = self.case(r1.json["id"])
        self.assertEqual((case["channel"], case["external_id"]), ("raw", "order-77-msg-1"))
        # The record's own external_id and channel win over the header and the source name.
        r4 = self.post("raw", {"text": "x", "external_id": "own-1", "channel": "web"},
                       {"Idempotency-Key": "ignored"}, secret=RAW_SECRET)
        self.assertEqual(r4.status, 201)
        case = self.case(r4.json["id"])
        self.assertEqual((case["channel"], case["external_id"]), ("web", "own-1"))

    def test_unsigned_source_takes_posts_and_was_warned_about(self):
        r = self.post("open", {"subject": "无签名来源"})
        self.assertEqual(r.status, 201, r)
        self.assertRegex(self.v.log(), r"WARN plugin/webhook: source open has no secret")

    # ---- 400 -------------------------------------------------------------------------------

    def test_400_bad_bodies(self):
        cases = [
            ("raw", b'{"text": "unterminated', "invalid_json", "line 1"),
            ("raw", b"", "invalid_json", "empty body"),
            ("raw", b'{"text": "\xe5\x9d"}', "invalid_utf8", None),
            ("form", b'{"content": "\xff"}', "invalid_utf8", None),
            ("raw", b'["not", "an", "object"]', "wrong_type", "JSON object"),
            ("raw", b'{"customer": {"name": "no text"}}', "missing_field", "'text' or 'subject'"),
            ("form", b'{"user": {"name": "no text"}}', "missing_field", "/content"),
            ("raw", b'{"text": 5}', "wrong_type", "'text'"),
            ("raw", b'{"text": "x", "colour": "red"}', "unknown_field", "colour"),
            ("form", b'{"content": "x", "user": {"name": ["a"]}}', "wrong_type", "/user/name"),
            ("raw", b'{"text": "x", "channel": "Not A Channel"}', "wrong_type", "channel"),
        ]
        for source, body, code, needle in cases:
            with self.subTest(body=body):
                secret = FORM_SECRET if source == "form" else RAW_SECRET
                self.assert_error(self.post(source, body, secret=secret), 400, code, needle)
        r = self.post("raw", {"text": "x"}, {"Idempotency-Key": "k" * 257}, secret=RAW_SECRET)
        self.assert_error(r, 400, "wrong_type", "Idempotency-Key")
        # A header of bytes that are not UTF-8 (curl sends them as they are; the surrogate
        # escape makes Python pass the raw byte 0xff on the command line).
        r = self.post("raw", {"text": "x"}, {"Idempotency-Key": "order-\udcff-1"},
                      secret=RAW_SECRET)
        self.assert_error(r, 400, "invalid_utf8", "Idempotency-Key")

    def test_400_channel_not_allowed_for_the_source(self):
        """A source cannot squat on another channel's idempotency keys: a post naming
        `email` with the Message-ID of a mail still on its way must not make the real mail
        an "already delivered" duplicate."""
        squat = {"text": "x", "channel": "email", "external_id": "future-mail@example.cn"}
        r = self.post("raw", squat, secret=RAW_SECRET)
        self.assert_error(r, 400, "channel_not_allowed", "'email'")
        self.assertIn("plugins.webhook.sources[].channels", r.json["error"]["message"])
        # Without `channels` a source keeps to its own name.
        self.assert_error(self.post("open", {"text": "x", "channel": "web"}), 400,
                          "channel_not_allowed", "source 'open'")
        r = self.post("open", {"text": "x", "channel": "open", "external_id": "own-open"})
        self.assertEqual(r.status, 201, r)
        # A mapped channel is checked the same way (the chat example allows wechat, weibo).
        body = json.dumps({"msg_id": "sq-1", "platform": "email", "content": "x",
                           "create_time": int(time.time())}).encode()
        self.assert_error(self.post("chat", body, secret="change-me-chat-secret"), 400,
                          "channel_not_allowed")
        # Nothing was written under email: the real mail would still be new.
        status, _, body = self.v.request("GET", "/api/v1/cases?channel=email")
        self.assertEqual((status, body["cases"]), (200, []))

    # ---- 401 -------------------------------------------------------------------------------

    def test_401_every_signature_problem(self):
        body = json.dumps({"text": "签名测试"}, ensure_ascii=False).encode()
        now = int(time.time())
        good = sign(RAW_SECRET, body, now)
        tampered = body.replace("签名".encode(), "篡改".encode())
        cases = {
            "no headers": {},
            "no signature": {"X-Voc-Timestamp": str(now)},
            "no timestamp": {"X-Voc-Signature": good["X-Voc-Signature"]},
            "wrong secret": sign("not-the-secret", body, now),
            "malformed": {"X-Voc-Timestamp": str(now), "X-Voc-Signature": "sha1=abc"},
            "timestamp not seconds": {"X-Voc-Timestamp": "yesterday",
                                      "X-Voc-Signature": good["X-Voc-Signature"]},
            "too old": sign(RAW_SECRET, body, now - 301),
            "too new": sign(RAW_SECRET, body, now + 400),
            "replayed with a new timestamp": {"X-Voc-Timestamp": str(now + 5),
                                              "X-Voc-Signature": good["X-Voc-Signature"]},
        }
        for what, headers in cases.items():
            with self.subTest(what):
                r = curl(self.v.url + "/hooks/raw", body, headers)
                self.assert_error(r, 401, "unauthorized")
                self.assertIn("www-authenticate", r.headers)
        with self.subTest("tampered body"):
            self.assert_error(curl(self.v.url + "/hooks/raw", tampered, good), 401,
                              "unauthorized", "does not match")
        with self.subTest("outside the window says by how much"):
            r = curl(self.v.url + "/hooks/raw", body, sign(RAW_SECRET, body, now - 301))
            self.assertRegex(r.json["error"]["message"], r"30\d s behind, the window is 300 s")
        # Inside the window (4 minutes off either way) the same body is fine.
        self.assertEqual(curl(self.v.url + "/hooks/raw", body,
                              sign(RAW_SECRET, body, now - 240)).status, 201)
        # The log says which source and why. Refusal lines are limited to a few per second
        # (a flood of bad posts must not flood the log): wait for a fresh second.
        time.sleep(1.1)
        mark = self.v.log_mark()
        curl(self.v.url + "/hooks/raw", body, sign(RAW_SECRET, body, int(time.time()) - 400))
        self.v.wait_log(r"WARN plugin/webhook: refused source=raw "
                        r"reason=timestamp_outside_window skew_s=-40\d( skipped=\d+)?$", since=mark)

    # ---- 404 / 405 / 413 -------------------------------------------------------------------

    def test_404_unknown_source(self):
        self.assert_error(self.post("nosuch", {"text": "x"}), 404, "not_found", "nosuch")
        self.assert_error(self.post("", {"text": "x"}), 404, "not_found")
        self.assert_error(self.post("raw/extra", {"text": "x"}, secret=RAW_SECRET), 404,
                          "not_found")
        self.assert_error(self.post("RAW", {"text": "x"}, secret=RAW_SECRET), 404, "not_found")

    def test_405_wrong_method(self):
        for method in ("GET", "PUT", "DELETE"):
            with self.subTest(method):
                r = curl(self.v.url + "/hooks/raw", None, None, method)
                self.assert_error(r, 405, "method_not_allowed")
                self.assertEqual(r.headers.get("allow"), "POST")

    def test_413_too_large(self):
        body = json.dumps({"text": "长" * 2000}, ensure_ascii=False).encode()  # ~6 KB > 4 KiB
        r = self.post("raw", body, secret=RAW_SECRET)
        self.assert_error(r, 413, "payload_too_large", "4096")
        # Just under the limit is fine.
        body = json.dumps({"text": "x" * 4000}).encode()
        self.assertEqual(self.post("raw", body, secret=RAW_SECRET).status, 201)

    # ---- the examples in contrib/webhook ---------------------------------------------------

    def test_examples_post_sh(self):
        for name in EXAMPLE_NAMES:
            with self.subTest(name):
                env = dict(os.environ, VOCD_URL=self.v.url)
                script = os.path.join(EXAMPLES, name, "post.sh")
                out = []
                for _ in range(2):
                    cp = subprocess.run(["sh", script], env=env, capture_output=True, text=True,
                                        timeout=60)
                    self.assertEqual(cp.returncode, 0, cp.stderr)
                    m = re.search(r"^HTTP (\d+)$", cp.stdout, re.M)
                    self.assertIsNotNone(m, cp.stdout)
                    out.append((int(m.group(1)), json.loads(cp.stdout.split("\n")[0])))
                # Posted twice: the mapped external_id makes the second a repeat.
                self.assertEqual(out[0][0], 201, out)
                self.assertEqual(out[1], (200, {"id": out[0][1]["id"], "created": False}))
                case = self.case(out[0][1]["id"])
                self.assertTrue(case["text"] or case["subject"])
                if name == "chat":
                    self.assertEqual(case["channel"], "wechat")  # set by the payload
                    self.assertIn("payload", case["fields"])
                elif name == "review":
                    self.assertEqual(case["channel"], "review")
                    self.assertEqual(case["fields"]["rating"], 1)
                    self.assertEqual(case["received_at"], "2025-11-23T02:00:00.000Z")
                else:
                    self.assertEqual(case["channel"], "webform")

    # ---- counters ---------------------------------------------------------------------------

    def test_zz_counters(self):
        _, _, metrics = self.v.request("GET", "/metrics", token=None)
        text = metrics.decode()
        for name in ("accepted", "repeated", "refused", "unauthorized"):
            m = re.search(r"^vocd_plugin_webhook_%s_total (\d+)$" % name, text, re.M)
            self.assertIsNotNone(m, name)
            self.assertGreater(int(m.group(1)), 0, name)


class Backpressure(unittest.TestCase):
    """503 + Retry-After: the plugin never queues without bound. A profile whose classify
    takes about half a second keeps the writer busy while a burst of posts arrives."""

    SLOW_PROFILE = """return {
  name = "slow",
  classify = function(case)
    local x = 0
    for i = 1, 50000000 do x = x + i end
    return { kind = "complaint" }
  end,
}
"""

    def burst(self, v, n=8):
        replies = [None] * n

        def one(i):
            replies[i] = curl(v.url + "/hooks/open", json.dumps({"text": "突发 %d" % i}).encode())
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return replies

    def run_burst(self, core_extra, plugin_options, needle):
        with Vocd(start=False) as v:
            profile = os.path.join(v.dir, "slow.lua")
            with open(profile, "w") as f:
                f.write(self.SLOW_PROFILE)
            v.write_config("profile: %s\nrules: { max_instructions: 1000000000 }\n%s%s"
                           % (json.dumps(profile), core_extra,
                              plugin_yaml([{"name": "open"}], **plugin_options)))
            v.start()
            replies = self.burst(v)
            busy = [r for r in replies if r.status == 503]
            created = [r for r in replies if r.status == 201]
            self.assertEqual(len(busy) + len(created), len(replies), replies)
            self.assertTrue(busy, "no 503 in the burst: %r" % replies)
            self.assertTrue(created, replies)
            for r in busy:
                self.assertEqual(r.error_code(), "unavailable")
                self.assertEqual(r.headers.get("retry-after"), "1")
                self.assertIn(needle, r.json["error"]["message"])
            # Every 201 is a durable case.
            for r in created:
                status, _, _ = v.request("GET", "/api/v1/cases/%d" % r.json["id"])
                self.assertEqual(status, 200)
            # Retrying after Retry-After gets through once the burst is over.
            time.sleep(1)
            r = curl(v.url + "/hooks/open", b'{"text": "retry"}')
            self.assertEqual(r.status, 201, r)
            _, _, metrics = v.request("GET", "/metrics", token=None)
            self.assertRegex(metrics.decode(), r"vocd_plugin_webhook_unavailable_total [1-9]")

    def test_503_when_the_writer_is_backed_up(self):
        self.run_burst("writer: { queue_limit: 1 }\n", {}, "backed up")

    def test_503_when_max_pending_is_reached(self):
        self.run_burst("", {"max_pending": 1}, "too many webhook posts are waiting")


class Unavailable(unittest.TestCase):
    """503 + Retry-After for the two other reasons than a full queue: the case store cannot
    take writes (map at max_map_size), and vocd is draining after SIGTERM."""

    def test_503_retry_after_when_the_store_is_full(self):
        with Vocd(config_extra="store: { map_size: 1MiB, max_map_size: 2MiB }\n" +
                  plugin_yaml([{"name": "open"}])) as v:
            replies = []
            for i in range(40):
                body = json.dumps({"text": "满" * 60000 + str(i)}, ensure_ascii=False).encode()
                replies.append(curl(v.url + "/hooks/open", body))
                if replies[-1].status != 201:
                    break
            self.assertEqual(replies[0].status, 201, replies[0])
            last = replies[-1]
            self.assertEqual((last.status, last.error_code()), (503, "unavailable"), last)
            self.assertEqual(last.headers.get("retry-after"), "30")
            # Nothing half-written: every 201 is a case.
            for r in replies[:-1]:
                status, _, _ = v.request("GET", "/api/v1/cases/%d" % r.json["id"])
                self.assertEqual(status, 200)

    def test_503_while_draining(self):
        """A request that completes after SIGTERM on a connection accepted before it gets
        503 + Retry-After, and the daemon still exits 0."""
        with Vocd(config_extra=plugin_yaml([{"name": "open"}])) as v:
            body = json.dumps({"text": "x" * 400}).encode()
            s = socket.create_connection((v.host, v.port), timeout=30)
            s.sendall(b"POST /hooks/open HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body[:1])
            mark = v.log_mark()
            v.proc.send_signal(signal.SIGTERM)
            # Trickle the body: the drain waits while input keeps arriving.
            sent = 1
            while not re.search(r"draining signal=SIGTERM", v.log()[mark:]):
                self.assertLess(sent, len(body) - 1, "vocd did not start draining")
                s.sendall(body[sent:sent + 1])
                sent += 1
                time.sleep(0.02)
            s.sendall(body[sent:])
            f = s.makefile("rb")
            status_line = f.readline().decode()
            headers = {}
            while True:
                line = f.readline().decode().strip()
                if not line:
                    break
                k, _, val = line.partition(":")
                headers[k.strip().lower()] = val.strip()
            reply = json.loads(f.read(int(headers["content-length"])))
            s.close()
            self.assertTrue(status_line.startswith("HTTP/1.1 503"), status_line)
            self.assertEqual(headers.get("retry-after"), "1")
            self.assertEqual(reply["error"]["code"], "unavailable")
            self.assertIn("shutting down", reply["error"]["message"])
            self.assertEqual(v.wait_exit(), 0)


class Reload(unittest.TestCase):
    def test_sighup_brings_new_sources_and_secrets(self):
        first = [{"name": "form", "secret": "old-secret", "map": {"text": "/t"}}]
        with Vocd(config_extra=plugin_yaml(first)) as v:
            body = b'{"t": "reload test"}'
            self.assertEqual(curl(v.url + "/hooks/form", body, sign("old-secret", body)).status,
                             201)
            self.assertEqual(curl(v.url + "/hooks/late", b'{"text": "x"}').status, 404)

            second = [{"name": "form", "secret": "new-secret", "map": {"text": "/t"}},
                      {"name": "late"}]
            mark = v.log_mark()
            v.write_config(plugin_yaml(second))
            v.sighup()
            v.wait_log(r"INFO plugins: reloaded plugin=webhook", since=mark)
            body = b'{"t": "after reload"}'
            self.assertEqual(curl(v.url + "/hooks/form", body, sign("old-secret", body)).status,
                             401)
            self.assertEqual(curl(v.url + "/hooks/form", body, sign("new-secret", body)).status,
                             201)
            self.assertEqual(curl(v.url + "/hooks/late", b'{"text": "x"}').status, 201)

            # A bad map is refused by the plugin: the sources it has stay.
            mark = v.log_mark()
            v.write_config(plugin_yaml([{"name": "form", "secret": "x", "map": {"txt": "/t"}}]))
            v.sighup()
            v.wait_log(r"plugin refused its new settings.*plugin=webhook", since=mark)
            self.assertRegex(v.log()[mark:], r"'txt' is not an intake field")
            body = b'{"t": "still new secret"}'
            self.assertEqual(curl(v.url + "/hooks/form", body, sign("new-secret", body)).status,
                             201)
            self.assertEqual(curl(v.url + "/hooks/late", b'{"text": "y"}').status, 201)

            # Moving the route needs a restart.
            mark = v.log_mark()
            v.write_config(plugin_yaml(second, path="/in/"))
            v.sighup()
            v.wait_log(r"path changed from /hooks/ to /in/: that takes a restart", since=mark)
            self.assertEqual(curl(v.url + "/hooks/late", b'{"text": "z"}').status, 201)

    def test_bad_source_config_stops_startup(self):
        for sources, needle in [
                ([{"name": "Bad Name"}], "name 'Bad Name' must be 1-32 characters"),
                ([{"name": "a"}, {"name": "a"}], "source 'a' is listed twice"),
                ([{"name": "a", "secret": ""}], "secret is empty"),
                ([{"name": "a", "channels": ["a", "E-Mail"]}], "'E-Mail' is not a channel name"),
                ([{"name": "a", "map": {"text": "content"}}], "'content' is not a JSON pointer"),
                ([{"name": "a", "map": {"customer.name": "/n"}}], "'text' or 'subject'")]:
            with self.subTest(needle):
                with Vocd(config_extra=plugin_yaml(sources), start=False) as v:
                    cp = v.run(timeout=60)
                    self.assertEqual(cp.returncode, 1, cp.stderr)
                    self.assertIn(needle, cp.stderr)
                    self.assertRegex(cp.stderr, r"plugin 'webhook': init failed")


if __name__ == "__main__":
    unittest.main(verbosity=2)

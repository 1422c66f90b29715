"""Black-box tests of the HTTP API (docs/api.md) and of the daemon's outside behaviour
(CONTRACT.md): every endpoint and error, roles, lifecycle, list filters and paging, admin
reload and backup, SIGTERM drain, SIGHUP, schema version, --check, --version, store full.

Runs the binary named by $VOCD_BIN through vocd_harness.Vocd."""

import calendar
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import TOKENS, Vocd  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

FULL_RECORD = {
    "external_id": "WO-20261123-0042",
    "channel": "hotline",
    "source": "customer",
    "received_at": "2026-11-23T09:15:00+08:00",
    "customer": {"name": "张伟", "contact": "13812345678", "region": "上海", "account": "C-1001"},
    "product": {"name": "智能电饭煲", "model": "RC-50", "batch": "B20261101"},
    "subject": "电饭煲无法加热",
    "text": "用了三天就不能加热了，指示灯一直闪。",
    "expected": "更换新机",
    "attachments": [{"name": "photo.jpg", "type": "image/jpeg", "size": 123456,
                     "sha256": "ab" * 32}],
    "fields": {"工单类型": "投诉", "nested": {"list": [1, "二", None, True]}},
}

CLASSIFICATION_KEYS = {"kind", "category", "severity", "department", "collaborators", "priority",
                       "tags"}
CASE_KEYS = {"id", "state", "created_at", "updated_at", "external_id", "channel", "source",
             "received_at", "customer", "product", "subject", "text", "expected", "attachments",
             "fields", "classification", "duplicate_of", "duplicates", "reopen_count",
             "satisfaction", "clocks", "events"}
EVENT_KEYS = {"seq", "type", "at", "actor", "note", "data"}
SUMMARY_KEYS = {"id", "state", "received_at", "channel", "subject", "kind", "category",
                "severity", "department", "priority", "breached"}


def q(path, **params):
    """path?params, UTF-8 percent-encoded."""
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


class ApiCase(unittest.TestCase):
    """Helpers shared by the test classes."""

    def assertError(self, resp, status, code=None):
        st, headers, body = resp
        self.assertEqual(st, status, "expected %d, got %d %r" % (status, st, body))
        self.assertTrue((headers.get("Content-Type") or "").startswith("application/json"),
                        headers.get("Content-Type"))
        self.assertIsInstance(body, dict, body)
        self.assertIn("error", body)
        err = body["error"]
        self.assertIsInstance(err.get("code"), str, body)
        self.assertIsInstance(err.get("message"), str, body)
        self.assertTrue(err["message"], body)
        if code:
            self.assertEqual(err["code"], code, body)
        return err["message"]

    def event(self, v, case_id, type_, token="admin", **fields):
        body = {"type": type_}
        body.update(fields)
        return v.request("POST", "/api/v1/cases/%d/events" % case_id, body, token=token)

    def ok_event(self, v, case_id, type_, state, **fields):
        st, _, body = self.event(v, case_id, type_, **fields)
        self.assertEqual(st, 201, body)
        self.assertEqual(body["state"], state, body)
        self.assertIsInstance(body["seq"], int)
        return body

    def get_case(self, v, case_id, token="admin"):
        st, _, body = v.request("GET", "/api/v1/cases/%d" % case_id, token=token)
        self.assertEqual(st, 200, body)
        return body

    def list_ids(self, v, token="admin", **params):
        st, _, body = v.request("GET", q("/api/v1/cases", **params), token=token)
        self.assertEqual(st, 200, body)
        self.assertIsNone(body["next_cursor"], "expected a single page")
        return [c["id"] for c in body["cases"]]

    def list_all(self, v, token="admin", limit=1000, **params):
        """Every case of a listing, following cursors."""
        out, cursor, pages = [], None, 0
        while True:
            p = dict(params, limit=limit)
            if cursor:
                p["cursor"] = cursor
            st, _, body = v.request("GET", q("/api/v1/cases", **p), token=token)
            self.assertEqual(st, 200, body)
            out.extend(body["cases"])
            cursor = body["next_cursor"]
            pages += 1
            self.assertLess(pages, 10000)
            if cursor is None:
                return out


# ---------------------------------------------------------------------------------------------
class TestIntakeAndCase(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.v = Vocd()

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def cases_count(self):
        return self.v.request("GET", "/api/v1/status")[2]["cases"]

    def test_create_and_idempotency(self):
        v = self.v
        before = self.cases_count()
        rec = dict(FULL_RECORD, external_id="IDEM-1")
        st, h, body = v.request("POST", "/api/v1/cases", rec)
        self.assertEqual(st, 201, body)
        self.assertTrue(h.get("Content-Type").startswith("application/json"))
        self.assertEqual(body["created"], True)
        self.assertIsInstance(body["id"], int)
        first = body["id"]
        # Same channel + external_id: the first id, created false, nothing written.
        changed = dict(rec, subject="另一个主题", text="完全不同的内容")
        st, _, body = v.request("POST", "/api/v1/cases", changed)
        self.assertEqual((st, body), (200, {"id": first, "created": False}))
        case = self.get_case(v, first)
        self.assertEqual(case["subject"], rec["subject"])
        self.assertEqual(len(case["events"]), 2)
        # Another channel with the same external_id is another case.
        st, _, body = v.request("POST", "/api/v1/cases", dict(rec, channel="web"))
        self.assertEqual(st, 201, body)
        self.assertNotEqual(body["id"], first)
        # Without external_id there is no idempotency.
        a = v.create_case(subject="无编号")
        b = v.create_case(subject="无编号")
        self.assertNotEqual(a, b)
        self.assertEqual(self.cases_count(), before + 4)
        # An ingest or agent token gets the same idempotent answer.
        st, _, body = v.request("POST", "/api/v1/cases", rec, token="ingest")
        self.assertEqual((st, body), (200, {"id": first, "created": False}))

    def test_get_case_shape(self):
        v = self.v
        rec = dict(FULL_RECORD, external_id="SHAPE-1")
        cid = v.create_case(**rec)
        case = self.get_case(v, cid)
        missing = CASE_KEYS - set(case)
        self.assertFalse(missing, "fields missing from GET case: %s" % missing)
        self.assertEqual(case["id"], cid)
        self.assertEqual(case["external_id"], "SHAPE-1")
        self.assertEqual(case["channel"], "hotline")
        self.assertEqual(case["source"], "customer")
        self.assertEqual(case["received_at"], "2026-11-23T01:15:00.000Z")  # stored in UTC
        for k in ("created_at", "updated_at", "received_at"):
            self.assertRegex(case[k], TIME_RE)
        self.assertEqual(case["customer"], rec["customer"])
        self.assertEqual(case["product"], rec["product"])
        for k in ("subject", "text", "expected", "attachments", "fields"):
            self.assertEqual(case[k], rec[k], k)
        self.assertEqual(CLASSIFICATION_KEYS - set(case["classification"]), set())
        c = case["classification"]
        self.assertIn(c["kind"], ("complaint", "suggestion", "praise", "inquiry", "opinion"))
        self.assertIsInstance(c["collaborators"], list)
        self.assertIsInstance(c["tags"], list)
        self.assertIn(c["priority"], (1, 2, 3, 4))
        self.assertIsNone(case["duplicate_of"])
        self.assertEqual(case["duplicates"], [])
        self.assertEqual(case["reopen_count"], 0)
        self.assertIsNone(case["satisfaction"])
        self.assertIsInstance(case["clocks"], list)
        self.assertEqual(case["state"], "classified")
        events = case["events"]
        self.assertEqual([e["type"] for e in events], ["received", "classified"])
        for i, e in enumerate(events, 1):
            self.assertEqual(EVENT_KEYS - set(e), set(), e)
            self.assertEqual(e["seq"], i)
            self.assertRegex(e["at"], TIME_RE)
            self.assertIsInstance(e["data"], dict)
        self.assertEqual(events[1]["data"]["kind"], c["kind"])
        self.assertEqual(events[1]["data"]["category"], c["category"])

    def test_defaults(self):
        t0 = time.time()
        cid = self.v.create_case(subject="只有主题")
        case = self.get_case(self.v, cid)
        self.assertEqual(case["channel"], "api")
        self.assertEqual(case["source"], "customer")
        self.assertIsNone(case["external_id"])
        self.assertEqual(case["text"], "")
        self.assertEqual(case["attachments"], [])
        self.assertEqual(case["fields"], {})
        received = calendar.timegm(time.strptime(case["received_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(received - t0), 60, case["received_at"])

    def test_text_only_and_other_sources(self):
        for source in ("employee", "partner"):
            cid = self.v.create_case(text="内部反馈", source=source, channel="visit")
            self.assertEqual(self.get_case(self.v, cid)["source"], source)


# ---------------------------------------------------------------------------------------------
class TestErrors(ApiCase):
    MAX_BODY = 256 * 1024

    @classmethod
    def setUpClass(cls):
        cls.v = Vocd(config_extra={"http": {"max_body_size": "256KiB"}})
        cls.case_id = cls.v.create_case(subject="错误测试")

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def post_case(self, body, token="admin"):
        return self.v.request("POST", "/api/v1/cases", body, token=token)

    def test_invalid_json(self):
        msg = self.assertError(self.post_case(b'{"text": "x",}'), 400, "invalid_json")
        self.assertRegex(msg, r"line 1")
        self.assertRegex(msg, r"column \d+")
        msg = self.assertError(self.post_case(b'{\n  "text": "x"\n  "subject": "y"\n}'), 400,
                               "invalid_json")
        self.assertRegex(msg, r"line 3")
        self.assertError(self.post_case(b""), 400, "invalid_json")
        self.assertError(self.post_case(b"not json at all"), 400, "invalid_json")
        # Duplicate keys are ambiguous and refused.
        self.assertEqual(self.post_case(b'{"text": "a", "text": "b"}')[0], 400)
        self.assertError(self.v.request("POST", "/api/v1/cases/%d/events" % self.case_id,
                                        b"{type: note}"), 400, "invalid_json")

    def test_invalid_utf8(self):
        for raw in (b'{"text": "\xe8\xb4"}', b'{"text": "ok", "customer": {"name": "\xff\xfe"}}',
                    b'{"subject": "\xc0\xaf"}', b'{"text": "x", "fields": {"k": "\xed\xa0\x80"}}'):
            self.assertError(self.post_case(raw), 400, "invalid_utf8")
        self.assertError(self.v.request("POST", "/api/v1/cases/%d/events" % self.case_id,
                                        b'{"type": "note", "note": "\xff"}'), 400, "invalid_utf8")
        self.assertError(self.v.request("GET", "/api/v1/cases?q=%FF%FE"), 400, "invalid_utf8")

    def test_unknown_field(self):
        msg = self.assertError(self.post_case({"text": "x", "colour": "red"}), 400,
                               "unknown_field")
        self.assertIn("colour", msg)
        msg = self.assertError(self.post_case({"text": "x", "customer": {"age": "30"}}), 400,
                               "unknown_field")
        self.assertIn("customer.age", msg)
        msg = self.assertError(self.post_case({"text": "x", "product": {"colour": "red"}}), 400,
                               "unknown_field")
        self.assertIn("colour", msg)
        self.assertError(self.post_case({"text": "x", "attachments": [
            {"name": "a", "url": "http://x"}]}), 400, "unknown_field")
        # Anything goes inside fields.
        st, _, body = self.post_case({"text": "x", "fields": {"colour": "red", "deep": {"a": [1]}}})
        self.assertEqual(st, 201, body)
        msg = self.assertError(self.event(self.v, self.case_id, "note", colour="red"), 400,
                               "unknown_field")
        self.assertIn("colour", msg)

    def test_wrong_type(self):
        bad = [
            {"text": 5},
            {"subject": ["a"]},
            {"text": "x", "customer": "张伟"},
            {"text": "x", "customer": {"name": 5}},
            {"text": "x", "product": {"model": 50}},
            {"text": "x", "attachments": {}},
            {"text": "x", "attachments": ["photo.jpg"]},
            {"text": "x", "attachments": [{"name": "a", "size": -1}]},
            {"text": "x", "attachments": [{"name": "a", "size": "12"}]},
            {"text": "x", "attachments": [{"name": "a", "sha256": "abc"}]},
            {"text": "x", "channel": "Hot Line"},
            {"text": "x", "channel": "a" * 33},
            {"text": "x", "channel": 7},
            {"text": "x", "source": "robot"},
            {"text": "x", "received_at": "yesterday"},
            {"text": "x", "received_at": "2026-11-23T09:15:00"},  # no offset
            {"text": "x", "received_at": "2026-13-45T09:15:00Z"},
            {"text": "x", "received_at": 1763800000},
            {"text": "x", "fields": []},
            {"text": "x", "external_id": ""},
            {"text": "x", "external_id": 42},
            {"text": "x", "external_id": "e" * 257},
            {"text": "x", "subject": "长" * 30000},  # 90000 bytes > 64 KiB
        ]
        for body in bad:
            with self.subTest(body=str(body)[:80]):
                self.assertError(self.post_case(body), 400, "wrong_type")
        msg = self.assertError(self.post_case({"text": "x", "customer": {"name": 5}}), 400,
                               "wrong_type")
        self.assertIn("customer.name", msg)
        for raw in (b"[1, 2]", b'"text"', b"42", b"null"):
            resp = self.post_case(raw)  # jansson refuses non-objects as JSON texts
            self.assertError(resp, 400)
            self.assertIn(resp[2]["error"]["code"], ("wrong_type", "invalid_json"), raw)
        # Limits that hold: external_id of 256 bytes, a long text.
        st, _, _ = self.post_case({"text": "x" * 200000, "external_id": "e" * 256})
        self.assertEqual(st, 201)

    def test_missing_field(self):
        self.assertError(self.post_case({}), 400, "missing_field")
        self.assertError(self.post_case({"subject": "", "text": ""}), 400, "missing_field")
        self.assertError(self.post_case({"customer": {"name": "张伟"}}), 400, "missing_field")
        self.assertError(self.v.request("POST", "/api/v1/cases/%d/events" % self.case_id, {}),
                         400, "missing_field")

    def test_event_validation(self):
        v, cid = self.v, self.case_id
        path = "/api/v1/cases/%d/events" % cid
        self.assertError(v.request("POST", path, {"type": 5}), 400, "wrong_type")
        self.assertError(v.request("POST", path, {"type": "Not A Type"}), 400, "wrong_type")
        self.assertError(self.event(v, cid, "frobnicate"), 400, "wrong_type")
        self.assertError(self.event(v, cid, "received"), 400)
        self.assertError(self.event(v, cid, "clock_breached"), 400)
        self.assertError(self.event(v, cid, "note", note=5), 400, "wrong_type")
        self.assertError(self.event(v, cid, "note", data=[1]), 400, "wrong_type")
        self.assertError(self.event(v, cid, "note", actor=["x"]), 400, "wrong_type")
        self.assertError(self.event(v, cid, "assigned"), 400, "missing_field")
        self.assertError(self.event(v, cid, "assigned", data={"department": 5}), 400)
        self.assertError(self.event(v, cid, "assigned", data={"department": "质量部",
                                                              "collaborators": "生产部"}),
                         400, "wrong_type")
        self.assertError(self.event(v, cid, "revisited"), 400)
        self.assertError(self.event(v, cid, "revisited", data={"satisfaction": 6}), 400)
        self.assertError(self.event(v, cid, "revisited", data={"satisfaction": "5"}), 400)
        self.assertError(self.event(v, cid, "duplicate"), 400)
        self.assertError(self.event(v, cid, "duplicate", data={"of": "7"}), 400)
        self.assertError(self.event(v, cid, "rejected"), 400, "missing_field")
        self.assertError(self.event(v, cid, "planned", data={"due": 5}), 400, "wrong_type")
        self.assertError(self.event(v, cid, "classified"), 400, "missing_field")
        self.assertError(self.event(v, cid, "classified", data={"kind": "rant"}), 400,
                         "wrong_type")
        self.assertError(self.event(v, cid, "classified", data={"priority": 9}), 400,
                         "wrong_type")
        self.assertError(self.event(v, cid, "classified", data={"mood": "bad"}), 400,
                         "unknown_field")
        # Nothing of that was recorded.
        self.assertEqual(len(self.get_case(v, cid)["events"]), 2)

    def test_bad_request_query(self):
        for params in ({"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"cursor": "zz"},
                       {"cursor": ""}, {"state": "bogus"}, {"since": "yesterday"},
                       {"until": "2026-02-30"}, {"breached": "maybe"}, {"colour": "red"}):
            with self.subTest(params=params):
                self.assertError(self.v.request("GET", q("/api/v1/cases", **params)), 400,
                                 "bad_request")

    def test_unauthorized(self):
        for token in (None, "not-a-token", TOKENS["admin"] + "x"):
            for method, path in (("GET", "/api/v1/cases"), ("POST", "/api/v1/cases"),
                                 ("GET", "/api/v1/status"), ("GET", "/api/v1/cases/1"),
                                 ("POST", "/api/v1/admin/reload")):
                resp = self.v.request(method, path, {"text": "x"} if method == "POST" else None,
                                      token=token)
                self.assertError(resp, 401, "unauthorized")
                self.assertIn("Bearer", resp[1].get("WWW-Authenticate") or "")
        resp = self.v.request("GET", "/api/v1/cases", token=None,
                              headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        self.assertError(resp, 401, "unauthorized")
        self.assertIn("Bearer", resp[1].get("WWW-Authenticate") or "")

    def test_not_found(self):
        v = self.v
        self.assertError(v.request("GET", "/api/v1/nope"), 404, "not_found")
        self.assertError(v.request("GET", "/api/v1/cases/1/nope"), 404, "not_found")
        self.assertError(v.request("GET", "/nope", token=None), 404, "not_found")
        self.assertError(v.request("GET", "/", token=None), 404, "not_found")
        for path in ("/api/v1/cases/999999", "/api/v1/cases/0", "/api/v1/cases/abc",
                     "/api/v1/cases/-1", "/api/v1/cases/99999999999999999999999"):
            self.assertError(v.request("GET", path), 404, "not_found")
        self.assertError(self.event(v, 999999, "note", note="x"), 404, "not_found")

    def test_method_not_allowed(self):
        v = self.v
        for method, path, allow in (("DELETE", "/api/v1/cases", {"GET", "POST"}),
                                    ("PUT", "/api/v1/cases", {"GET", "POST"}),
                                    ("PUT", "/api/v1/cases/%d" % self.case_id, {"GET"}),
                                    ("DELETE", "/api/v1/cases/%d" % self.case_id, {"GET"}),
                                    ("GET", "/api/v1/cases/%d/events" % self.case_id, {"POST"}),
                                    ("POST", "/api/v1/status", {"GET"}),
                                    ("GET", "/api/v1/admin/reload", {"POST"}),
                                    ("GET", "/api/v1/admin/backup", {"POST"})):
            with self.subTest(method=method, path=path):
                resp = v.request(method, path, b"{}" if method in ("PUT", "POST") else None)
                self.assertError(resp, 405, "method_not_allowed")
                got = {m.strip() for m in (resp[1].get("Allow") or "").split(",") if m.strip()}
                self.assertEqual(got, allow)

    def test_conflict_has_reason(self):
        cid = self.v.create_case(subject="冲突")
        msg = self.assertError(self.event(self.v, cid, "verified"), 409, "conflict")
        self.assertIn("verified", msg)
        self.assertIn("classified", msg)  # the state it is in

    def test_payload_too_large(self):
        big = {"text": "x" * (self.MAX_BODY + 1000)}
        msg = self.assertError(self.post_case(big), 413, "payload_too_large")
        self.assertIn(str(self.MAX_BODY), msg)
        self.assertError(self.v.request("POST", "/api/v1/cases/%d/events" % self.case_id,
                                        {"type": "note", "note": "x" * (self.MAX_BODY + 10)}),
                         413, "payload_too_large")
        # Far over the limit: not read at all, a bare 413 (announced length is enough).
        conn = http.client.HTTPConnection(self.v.host, self.v.port, timeout=10)
        try:
            conn.putrequest("POST", "/api/v1/cases")
            conn.putheader("Authorization", "Bearer " + TOKENS["admin"])
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(self.MAX_BODY * 8 + 1))
            conn.endheaders()
            resp = conn.getresponse()
            self.assertEqual(resp.status, 413)
            resp.read()
        finally:
            conn.close()
        # Still serving.
        self.assertEqual(self.v.request("GET", "/healthz", token=None)[0], 200)

    def raw_status(self, request):
        """Send raw bytes, return the reply's status code (the server may close early)."""
        import socket
        s = socket.create_connection((self.v.host, self.v.port), timeout=10)
        try:
            try:
                s.sendall(request)
            except OSError:
                pass  # closed while we were still sending: the reply is already there
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
        self.assertIsNotNone(m, data[:200])
        return int(m.group(1))

    def test_headers_too_large(self):
        """Request line plus headers are limited to 64 KiB: past it a 4xx, not buffering."""
        many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 100) for i in range(1000))
        for name, request in (
                ("many headers", b"GET /healthz HTTP/1.1\r\nHost: vocd\r\n" + many + b"\r\n"),
                ("one long header",
                 b"GET /healthz HTTP/1.1\r\nHost: vocd\r\nX-Big: " + b"a" * 100000 +
                 b"\r\n\r\n"),
                ("long request line",
                 b"GET /healthz?" + b"a" * 100000 + b" HTTP/1.1\r\nHost: vocd\r\n\r\n")):
            with self.subTest(name):
                status = self.raw_status(request)
                self.assertGreaterEqual(status, 400)
                self.assertLess(status, 500)
        # Big but under the limit is fine.
        st, _, body = self.v.request("GET", "/healthz", token=None,
                                     headers={"X-Pad": "a" * 30000})
        self.assertEqual(st, 200, body)


# ---------------------------------------------------------------------------------------------
class TestRoles(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.v = v = Vocd()
        cls.a = v.create_case(subject="质量问题 A", customer={"name": "张伟",
                                                             "contact": "13812345678"})
        cls.b = v.create_case(subject="服务问题 B", customer={"name": "李娜",
                                                             "contact": "zhang@example.com"})
        cls.c = v.create_case(subject="协作问题 C")
        cls.d = v.create_case(subject="未分配 D")
        t = cls()
        t.ok_event(v, cls.a, "assigned", "assigned", data={"department": "质量部"})
        t.ok_event(v, cls.b, "assigned", "assigned", data={"department": "客服部"})
        t.ok_event(v, cls.c, "assigned", "assigned",
                   data={"department": "生产部", "collaborators": ["质量部"]})

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def runTest(self):  # lets setUpClass build an instance for its helpers
        pass

    def test_agent_sees_only_own_departments(self):
        v = self.v
        self.assertEqual(set(self.list_ids(v, token="agent")), {self.a, self.c})
        self.assertEqual(self.list_ids(v, token="agent", department="客服部"), [])
        self.assertEqual(self.get_case(v, self.a, token="agent")["id"], self.a)
        self.assertEqual(self.get_case(v, self.c, token="agent")["id"], self.c)
        for other in (self.b, self.d):
            self.assertError(v.request("GET", "/api/v1/cases/%d" % other, token="agent"), 404,
                             "not_found")
            self.assertError(self.event(v, other, "note", token="agent", note="看看"), 404,
                             "not_found")
        st, _, body = self.event(v, self.a, "acknowledged", token="agent")
        self.assertEqual(st, 201, body)
        ev = self.get_case(v, self.a)["events"][-1]
        self.assertEqual((ev["type"], ev["actor"]), ("acknowledged", "agent"))
        # An agent may file a case for any department (it then does not see it).
        st, _, body = v.request("POST", "/api/v1/cases", {"subject": "代客户登记"}, token="agent")
        self.assertEqual(st, 201, body)
        self.assertEqual(v.request("GET", "/api/v1/cases/%d" % body["id"], token="agent")[0], 404)
        # Not an admin.
        self.assertError(v.request("POST", "/api/v1/admin/reload", token="agent"), 403,
                         "forbidden")
        self.assertError(v.request("POST", "/api/v1/admin/backup", token="agent"), 403,
                         "forbidden")

    def test_agent_loses_case_when_reassigned(self):
        v = self.v
        cid = v.create_case(subject="转出")
        self.ok_event(v, cid, "assigned", "assigned", data={"department": "质量部"})
        self.assertEqual(self.get_case(v, cid, token="agent")["id"], cid)
        st, _, _ = self.event(v, cid, "assigned", token="agent", data={"department": "物流部"})
        self.assertEqual(st, 201)
        self.assertEqual(v.request("GET", "/api/v1/cases/%d" % cid, token="agent")[0], 404)
        self.assertNotIn(cid, self.list_ids(v, token="agent"))

    def test_viewer_masked_read_only(self):
        v = self.v
        self.assertEqual(self.get_case(v, self.a, token="viewer")["customer"]["contact"],
                         "138****5678")
        self.assertEqual(self.get_case(v, self.b, token="viewer")["customer"]["contact"],
                         "z***@example.com")
        self.assertEqual(self.get_case(v, self.b, token="viewer")["customer"]["name"], "李娜")
        self.assertEqual(self.get_case(v, self.a)["customer"]["contact"], "13812345678")
        self.assertEqual(self.get_case(v, self.a, token="agent")["customer"]["contact"],
                         "13812345678")
        self.assertTrue({self.a, self.b, self.c, self.d} <= set(self.list_ids(v, token="viewer")))
        self.assertError(v.request("POST", "/api/v1/cases", {"subject": "x"}, token="viewer"),
                         403, "forbidden")
        self.assertError(self.event(v, self.a, "note", token="viewer", note="x"), 403,
                         "forbidden")
        self.assertError(v.request("POST", "/api/v1/admin/reload", token="viewer"), 403,
                         "forbidden")
        self.assertEqual(v.request("GET", "/api/v1/status", token="viewer")[0], 200)

    def test_viewer_masks_addresses_in_fields_and_events(self):
        """Channels keep sender and recipient addresses in fields and event data (the
        e-mail plugin: fields.from/to/cc/envelope_from/recipients, message data.from): the
        viewer sees them masked like customer.contact; other roles see them whole."""
        v = self.v
        fields = {"message_id": "<m1@mail.example.com>",
                  "from": "张伟 <zhangwei@example.com>", "to": "service@vendor.cn",
                  "cc": "Li <li.na@example.com>, wang@example.com",
                  "recipients": ["service@vendor.cn"], "envelope_from": "zhangwei@example.com",
                  "date": "2026-11-23", "caller": "13912345678",
                  "hotline": {"callback": "+86 139 1234 5678", "工单": "WO-20261123-0042"}}
        cid = v.create_case(subject="邮件来信", channel="email",
                            customer={"name": "张伟", "contact": "zhangwei@example.com"},
                            fields=fields)
        st, _, body = self.event(v, cid, "message", note="补充说明",
                                 data={"from": "zhangwei@example.com", "from_name": "张伟",
                                       "subject": "Re: 邮件来信"})
        self.assertEqual(st, 201, body)
        masked = self.get_case(v, cid, token="viewer")
        f = masked["fields"]
        self.assertEqual(masked["customer"]["contact"], "z***@example.com")
        self.assertEqual(f["from"], "张伟 <z***@example.com>")
        self.assertEqual(f["to"], "s***@vendor.cn")
        self.assertEqual(f["cc"], "Li <l***@example.com>, w***@example.com")
        self.assertEqual(f["recipients"], ["s***@vendor.cn"])
        self.assertEqual(f["envelope_from"], "z***@example.com")
        self.assertEqual(f["caller"], "139****5678")
        self.assertEqual(f["hotline"]["callback"], "+86****5678")
        self.assertEqual(f["date"], "2026-11-23")
        self.assertEqual(f["hotline"]["工单"], "WO-20261123-0042")
        msg = [e for e in masked["events"] if e["type"] == "message"][-1]
        self.assertEqual(msg["data"]["from"], "z***@example.com")
        self.assertEqual(msg["data"]["from_name"], "张伟")
        self.assertEqual(msg["note"], "补充说明")
        dump = json.dumps({"fields": f, "events": masked["events"]}, ensure_ascii=False)
        for secret in ("zhangwei@", "li.na@", "wang@", "service@", "13912345678", "1234 5678"):
            self.assertNotIn(secret, dump)
        # Admins and agents see the case as stored.
        whole = self.get_case(v, cid)
        self.assertEqual(whole["fields"], fields)
        msg = [e for e in whole["events"] if e["type"] == "message"][-1]
        self.assertEqual(msg["data"]["from"], "zhangwei@example.com")
        # Masking one view left the store alone.
        self.assertEqual(self.get_case(v, cid)["fields"], fields)

    def test_ingest_may_only_create(self):
        v = self.v
        st, _, body = v.request("POST", "/api/v1/cases", {"subject": "进件"}, token="ingest")
        self.assertEqual(st, 201, body)
        ev = self.get_case(v, body["id"])["events"][0]
        self.assertEqual(ev["type"], "received")
        for method, path in (("GET", "/api/v1/cases"), ("GET", "/api/v1/cases/%d" % self.a),
                             ("POST", "/api/v1/cases/%d/events" % self.a),
                             ("GET", "/api/v1/status"), ("POST", "/api/v1/admin/reload"),
                             ("POST", "/api/v1/admin/backup")):
            with self.subTest(method=method, path=path):
                body = {"type": "note", "note": "x"} if "events" in path else None
                self.assertError(v.request(method, path, body, token="ingest"), 403, "forbidden")


# ---------------------------------------------------------------------------------------------
class TestListFilters(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.v = v = Vocd()
        t = cls()
        cls.c1 = v.create_case(channel="hotline", received_at="2026-01-10T10:00:00Z",
                               subject="電飯煲質量問題", text="加熱不了")
        t.ok_event(v, cls.c1, "classified", "classified",
                   data={"kind": "complaint", "category": "产品质量"})
        t.ok_event(v, cls.c1, "assigned", "assigned", data={"department": "质量部"})
        cls.c2 = v.create_case(channel="web", received_at="2026-01-11T10:00:00Z",
                               subject="服务态度差", text="客服不理人")
        t.ok_event(v, cls.c2, "classified", "classified",
                   data={"kind": "complaint", "category": "服务态度"})
        t.ok_event(v, cls.c2, "assigned", "assigned",
                   data={"department": "客服部", "collaborators": ["销售部"]})
        cls.c3 = v.create_case(channel="email", received_at="2026-01-12T18:00:00+08:00",
                               subject="建议", text="希望 ＲＣ－５０ 型号增加预约功能")
        t.ok_event(v, cls.c3, "classified", "classified",
                   data={"kind": "suggestion", "category": "产品功能"})
        cls.c4 = v.create_case(channel="hotline", received_at="2026-01-13T10:00:00Z",
                               subject="表扬", text="质量很好，谢谢")
        t.ok_event(v, cls.c4, "classified", "classified",
                   data={"kind": "praise", "category": "产品质量"})
        cls.c5 = v.create_case(channel="web", received_at="2026-01-14T00:00:00Z",
                               subject="Delivery late", text="ORDER 12345 LATE")
        t.ok_event(v, cls.c5, "classified", "classified",
                   data={"kind": "complaint", "category": "交付及时性"})
        t.ok_event(v, cls.c5, "assigned", "assigned", data={"department": "物流部"})
        t.ok_event(v, cls.c5, "waiting", "waiting")

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def runTest(self):
        pass

    def check(self, expected, **params):
        with self.subTest(params=params):
            self.assertEqual(self.list_ids(self.v, **params), expected)

    def test_order_and_summary_shape(self):
        c = self
        self.check([c.c5, c.c4, c.c3, c.c2, c.c1])
        st, _, body = self.v.request("GET", "/api/v1/cases")
        self.assertEqual(set(body), {"cases", "next_cursor"})
        first = body["cases"][0]
        self.assertEqual(SUMMARY_KEYS - set(first), set())
        self.assertEqual((first["id"], first["state"], first["channel"], first["subject"],
                          first["kind"], first["category"], first["department"],
                          first["breached"]),
                         (c.c5, "waiting", "web", "Delivery late", "complaint", "交付及时性",
                          "物流部", False))
        self.assertEqual(first["received_at"], "2026-01-14T00:00:00.000Z")

    def test_exact_filters(self):
        c = self
        self.check([c.c2, c.c1], state="assigned")
        self.check([c.c4, c.c3], state="classified")
        self.check([c.c5], state="waiting")
        self.check([], state="closed")
        self.check([c.c4, c.c1], category="产品质量")
        self.check([], category="产品")  # exact, not a prefix
        self.check([c.c5, c.c2, c.c1], kind="complaint")
        self.check([c.c3], kind="suggestion")
        self.check([c.c4, c.c1], channel="hotline")
        self.check([c.c3], channel="email")
        self.check([c.c1], department="质量部")
        self.check([c.c2], department="客服部")
        self.check([c.c4], channel="hotline", kind="praise")
        self.check([c.c1], category="产品质量", state="assigned")
        self.check([c.c5], kind="complaint", channel="web", state="waiting")
        self.check([], breached="true")
        self.check([c.c5, c.c4, c.c3, c.c2, c.c1], breached="false")

    def test_since_until(self):
        c = self
        self.check([c.c5, c.c4, c.c3, c.c2], since="2026-01-11T10:00:00Z")  # inclusive
        self.check([c.c3, c.c2, c.c1], until="2026-01-13T10:00:00Z")  # exclusive
        self.check([c.c3, c.c2], since="2026-01-11", until="2026-01-13")
        self.check([c.c5, c.c4, c.c3], since="2026-01-12T18:00:00+08:00")
        self.check([c.c3], since="2026-01-12T10:00:00.000Z", until="2026-01-12T10:00:00.001Z")
        self.check([], since="2026-01-13", until="2026-01-12")
        self.check([c.c4, c.c1], channel="hotline", since="2026-01-01", until="2027-01-01")
        self.check([c.c2], kind="complaint", since="2026-01-11", until="2026-01-12")

    def test_text_search_normalised(self):
        c = self
        self.check([c.c4, c.c1], q="質量")  # Traditional finds Simplified and Traditional
        self.check([c.c4, c.c1], q="质量")
        self.check([c.c1], q="电饭煲")  # Simplified finds the Traditional 電飯煲
        self.check([c.c1], q="電飯煲")
        self.check([c.c3], q="rc-50")  # full-width ＲＣ－５０ in the text
        self.check([c.c3], q="ＲＣ－５０")
        self.check([c.c3], q="Rc－50")
        self.check([c.c5], q="order 12345")  # case folded
        self.check([c.c5], q="ｏｒｄｅｒ")
        self.check([c.c5], q="delivery")  # subject
        self.check([], q="不存在的词")
        self.check([c.c4], q="质量", kind="praise")
        self.check([c.c1], q="質量", state="assigned", since="2026-01-01")


# ---------------------------------------------------------------------------------------------
class TestPaging(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.v = v = Vocd()
        cls.page_ids = []
        for i in range(23):
            # Groups of three share a received_at: the cursor must break ties.
            cls.page_ids.append(v.create_case(
                channel="page", subject="分页 %d" % i,
                received_at="2026-03-%02dT08:00:00Z" % (1 + i // 3)))
        cls.other_ids = [v.create_case(channel="other", subject="其他 %d" % i,
                                       received_at="2026-03-%02dT09:00:00Z" % (1 + i))
                         for i in range(5)]

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def walk(self, limit, **params):
        seen, cursor, pages = [], None, 0
        while True:
            p = dict(params, limit=limit)
            if cursor is not None:
                p["cursor"] = cursor
            st, _, body = self.v.request("GET", q("/api/v1/cases", **p))
            self.assertEqual(st, 200, body)
            self.assertLessEqual(len(body["cases"]), limit)
            seen.extend(body["cases"])
            pages += 1
            self.assertLess(pages, 200, "paging does not end")
            cursor = body["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertTrue(cursor)
        return seen, pages

    def assertNewestFirst(self, cases):
        keys = [(c["received_at"], c["id"]) for c in cases]
        self.assertEqual(keys, sorted(keys, reverse=True))

    def test_every_case_exactly_once(self):
        everything = set(self.page_ids) | set(self.other_ids)
        for limit in (1, 2, 3, 5, 7, 28, 50):
            with self.subTest(limit=limit):
                seen, pages = self.walk(limit)
                ids = [c["id"] for c in seen]
                self.assertEqual(len(ids), len(set(ids)), "a case came twice")
                self.assertEqual(set(ids), everything)
                self.assertNewestFirst(seen)
                self.assertGreaterEqual(pages, -(-len(everything) // limit))

    def test_paging_with_filters(self):
        for limit in (1, 4, 23):
            seen, _ = self.walk(limit, channel="page")
            ids = [c["id"] for c in seen]
            self.assertEqual(sorted(ids), sorted(self.page_ids))
            self.assertEqual(len(ids), len(set(ids)))
            self.assertNewestFirst(seen)
        seen, _ = self.walk(2, channel="page", since="2026-03-02", until="2026-03-04")
        self.assertEqual(sorted(c["id"] for c in seen), sorted(self.page_ids[3:9]))
        seen, _ = self.walk(3, q="其他")
        self.assertEqual(sorted(c["id"] for c in seen), sorted(self.other_ids))
        # A page that is exactly full: the next one (if any) is empty and the last.
        seen, _ = self.walk(5, channel="other")
        self.assertEqual(sorted(c["id"] for c in seen), sorted(self.other_ids))

    def test_default_and_max_limit(self):
        st, _, body = self.v.request("GET", "/api/v1/cases")
        self.assertEqual(len(body["cases"]), 28)
        self.assertIsNone(body["next_cursor"])
        st, _, body = self.v.request("GET", "/api/v1/cases?limit=1000")
        self.assertEqual((st, len(body["cases"])), (200, 28))

    def test_new_cases_do_not_disturb_a_walk(self):
        # Cases created while paging are newer than the cursor: the walk stays exact.
        with Vocd() as v:
            old = [v.create_case(subject="旧 %d" % i, received_at="2026-02-0%dT00:00:00Z" % (i + 1))
                   for i in range(5)]
            st, _, body = v.request("GET", "/api/v1/cases?limit=2")
            ids = [c["id"] for c in body["cases"]]
            v.create_case(subject="新来的")
            cursor = body["next_cursor"]
            while cursor:
                st, _, body = v.request("GET", q("/api/v1/cases", limit=2, cursor=cursor))
                ids.extend(c["id"] for c in body["cases"])
                cursor = body["next_cursor"]
            self.assertEqual(ids, old[::-1])


# ---------------------------------------------------------------------------------------------
class TestLifecycle(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.v = Vocd()

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def test_happy_path_to_closed(self):
        v = self.v
        cid = v.create_case(**dict(FULL_RECORD, external_id="LIFE-1"))
        self.assertEqual(self.get_case(v, cid)["state"], "classified")
        self.ok_event(v, cid, "acknowledged", "classified")
        self.ok_event(v, cid, "assigned", "assigned", actor="王芳", note="转质量部处理",
                      data={"department": "质量部", "collaborators": ["生产部"]})
        self.ok_event(v, cid, "planned", "planned", data={"due": "2026-11-30T18:00:00+08:00"})
        self.ok_event(v, cid, "planned", "planned", note="改期")
        self.ok_event(v, cid, "message", "planned", note="客户来电催促")
        self.ok_event(v, cid, "resolved", "resolved", note="更换加热盘")
        self.ok_event(v, cid, "verified", "verified")
        self.ok_event(v, cid, "replied", "replied")
        self.ok_event(v, cid, "revisited", "revisited", data={"satisfaction": 2})
        self.ok_event(v, cid, "revisited", "revisited", data={"satisfaction": 5})
        last = self.ok_event(v, cid, "closed", "closed")
        case = self.get_case(v, cid)
        self.assertEqual(case["state"], "closed")
        self.assertEqual(case["satisfaction"], 5)  # the latest revisit
        self.assertEqual(case["classification"]["department"], "质量部")
        self.assertEqual(case["classification"]["collaborators"], ["生产部"])
        types = [e["type"] for e in case["events"]]
        self.assertEqual(types, ["received", "classified", "acknowledged", "assigned", "planned",
                                 "planned", "message", "resolved", "verified", "replied",
                                 "revisited", "revisited", "closed"])
        self.assertEqual([e["seq"] for e in case["events"]], list(range(1, len(types) + 1)))
        self.assertEqual(last["seq"], len(types))
        assigned = case["events"][3]
        self.assertEqual((assigned["actor"], assigned["note"]), ("王芳", "转质量部处理"))
        self.assertEqual(assigned["data"]["department"], "质量部")
        self.assertEqual(case["events"][2]["actor"], "admin")  # default: the token's name
        self.assertEqual(case["events"][4]["data"]["due"], "2026-11-30T18:00:00+08:00")
        self.assertGreaterEqual(case["updated_at"], case["created_at"])
        # Closed: only notes and messages, and reopening.
        self.assertError(self.event(v, cid, "assigned", data={"department": "质量部"}), 409,
                         "conflict")
        self.assertError(self.event(v, cid, "waiting"), 409, "conflict")
        self.ok_event(v, cid, "note", "closed", note="归档")
        self.ok_event(v, cid, "reopened", "reopened", note="客户不满意")
        self.assertEqual(self.get_case(v, cid)["reopen_count"], 1)
        self.ok_event(v, cid, "resolved", "resolved")
        self.ok_event(v, cid, "closed", "closed")
        self.ok_event(v, cid, "reopened", "reopened")
        case = self.get_case(v, cid)
        self.assertEqual((case["reopen_count"], case["state"]), (2, "reopened"))
        self.ok_event(v, cid, "assigned", "assigned", data={"department": "生产部"})

    def test_refused_transitions(self):
        v = self.v
        cid = v.create_case(subject="状态机")
        for type_, fields in (("verified", {}), ("resolved", {}), ("closed", {}),
                              ("replied", {}), ("resumed", {}), ("reopened", {}),
                              ("planned", {}), ("revisited", {"data": {"satisfaction": 3}})):
            with self.subTest(type=type_):
                msg = self.assertError(self.event(v, cid, type_, **fields), 409, "conflict")
                self.assertIn(type_, msg)
                self.assertIn("classified", msg)
        self.assertEqual(len(self.get_case(v, cid)["events"]), 2)
        self.ok_event(v, cid, "assigned", "assigned", data={"department": "质量部"})
        self.ok_event(v, cid, "resolved", "resolved")
        msg = self.assertError(self.event(v, cid, "planned"), 409, "conflict")
        self.assertIn("resolved", msg)
        self.assertError(self.event(v, cid, "revisited", data={"satisfaction": 4}), 409)
        self.assertError(self.event(v, cid, "rejected", note="晚了"), 409)

    def test_classified_changes_classification(self):
        v = self.v
        cid = v.create_case(subject="重新分类")
        self.ok_event(v, cid, "classified", "classified",
                      data={"category": "服务态度", "severity": "严重", "priority": 1,
                            "tags": ["vip"]})
        c = self.get_case(v, cid)["classification"]
        self.assertEqual((c["category"], c["severity"], c["priority"], c["tags"]),
                         ("服务态度", "严重", 1, ["vip"]))
        self.ok_event(v, cid, "assigned", "assigned", data={"department": "客服部"})
        self.ok_event(v, cid, "classified", "assigned", data={"kind": "complaint"})
        c = self.get_case(v, cid)["classification"]
        self.assertEqual((c["kind"], c["category"], c["department"]),
                         ("complaint", "服务态度", "客服部"))

    def test_waiting_and_resumed(self):
        v = self.v
        cid = v.create_case(subject="等客户")
        self.ok_event(v, cid, "assigned", "assigned", data={"department": "质量部"})
        self.ok_event(v, cid, "planned", "planned")
        self.ok_event(v, cid, "waiting", "waiting", note="等客户寄回")
        msg = self.assertError(self.event(v, cid, "resolved"), 409, "conflict")
        self.assertIn("waiting", msg)
        self.assertError(self.event(v, cid, "waiting"), 409, "conflict")
        self.assertError(self.event(v, cid, "assigned", data={"department": "质量部"}), 409)
        self.ok_event(v, cid, "note", "waiting", note="已提醒")
        self.ok_event(v, cid, "message", "waiting", note="客户回信")
        self.ok_event(v, cid, "acknowledged", "waiting")
        self.ok_event(v, cid, "classified", "waiting", data={"severity": "一般"})
        self.ok_event(v, cid, "resumed", "planned")  # back to the state before waiting
        self.ok_event(v, cid, "resolved", "resolved")
        # From classified and back.
        cid2 = v.create_case(subject="等客户2")
        self.ok_event(v, cid2, "waiting", "waiting")
        self.ok_event(v, cid2, "resumed", "classified")
        # Rejected while waiting.
        cid3 = v.create_case(subject="等客户3")
        self.ok_event(v, cid3, "waiting", "waiting")
        self.ok_event(v, cid3, "rejected", "rejected", note="超出服务范围")

    def test_rejected_and_reopened(self):
        v = self.v
        cid = v.create_case(subject="不受理")
        self.assertError(self.event(v, cid, "rejected"), 400, "missing_field")
        self.assertError(self.event(v, cid, "rejected", note=""), 400, "missing_field")
        self.ok_event(v, cid, "rejected", "rejected", note="不属于本公司产品")
        self.assertError(self.event(v, cid, "assigned", data={"department": "质量部"}), 409)
        self.assertError(self.event(v, cid, "rejected", note="再次"), 409)
        self.ok_event(v, cid, "message", "rejected", note="客户补充了购买凭证")
        self.ok_event(v, cid, "reopened", "reopened")
        case = self.get_case(v, cid)
        self.assertEqual(case["reopen_count"], 1)
        self.assertEqual(case["events"][2]["note"], "不属于本公司产品")

    def test_duplicate_links_both_ways(self):
        v = self.v
        b = v.create_case(subject="原始问题")
        a = v.create_case(subject="重复问题")
        c = v.create_case(subject="又一个重复")
        self.ok_event(v, a, "duplicate", "duplicate", data={"of": b})
        self.ok_event(v, c, "duplicate", "duplicate", data={"of": b})
        ca, cb = self.get_case(v, a), self.get_case(v, b)
        self.assertEqual((ca["state"], ca["duplicate_of"], ca["duplicates"]), ("duplicate", b, []))
        self.assertEqual(sorted(cb["duplicates"]), sorted([a, c]))
        self.assertIsNone(cb["duplicate_of"])
        self.assertEqual(cb["state"], "classified")  # the original is untouched otherwise
        # Nothing deleted: all three are still listed and readable.
        self.assertTrue({a, b, c} <= {x["id"] for x in self.list_all(v)})
        # A duplicate is not open any more.
        self.assertError(self.event(v, a, "assigned", data={"department": "质量部"}), 409)
        self.assertError(self.event(v, a, "reopened"), 409)
        self.ok_event(v, a, "note", "duplicate", note="已合并")
        d = v.create_case(subject="自我重复")
        msg = self.assertError(self.event(v, d, "duplicate", data={"of": d}), 409, "conflict")
        self.assertIn("itself", msg)
        msg = self.assertError(self.event(v, d, "duplicate", data={"of": 999999}), 409,
                               "conflict")
        self.assertIn("999999", msg)
        cd = self.get_case(v, d)
        self.assertEqual((cd["state"], cd["duplicate_of"]), ("classified", None))


# ---------------------------------------------------------------------------------------------
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
METRIC_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_prometheus(text):
    """Parse Prometheus text format 0.0.4 the way a strict scraper would; raise ValueError on
    anything it would refuse. Returns {(name, frozenset(labels.items())): value}."""
    if text and not text.endswith("\n"):
        raise ValueError("the exposition does not end with a newline")
    types, helps, samples = {}, set(), {}
    finished, current = set(), None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4 and line.startswith("# TYPE "):
                raise ValueError("line %d: malformed TYPE" % n)
            name = parts[2]
            if not re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", name):
                raise ValueError("line %d: bad metric name %r" % (n, name))
            if name in finished or name == current:
                raise ValueError("line %d: HELP/TYPE of %s after its samples" % (n, name))
            if line.startswith("# HELP "):
                if name in helps:
                    raise ValueError("line %d: second HELP for %s" % (n, name))
                helps.add(name)
            else:
                if name in types:
                    raise ValueError("line %d: second TYPE for %s" % (n, name))
                if parts[3] not in METRIC_TYPES:
                    raise ValueError("line %d: unknown type %r" % (n, parts[3]))
                types[name] = parts[3]
            continue
        if line.startswith("#") or not line.strip():
            if not line.startswith("#"):
                raise ValueError("line %d: blank line inside the exposition" % n)
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n, line))
        name, labeltext, value = m.group(1), m.group(2), m.group(3)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                family = base
        if family not in types:
            raise ValueError("line %d: sample of %s before its TYPE" % (n, name))
        if family not in helps:
            raise ValueError("line %d: sample of %s before its HELP" % (n, name))
        if family != current:
            if family in finished:
                raise ValueError("line %d: samples of %s are not together" % (n, family))
            if current:
                finished.add(current)
            current = family
        labels = {}
        if labeltext:
            pos = 0
            while pos < len(labeltext):
                lm = LABEL_RE.match(labeltext, pos)
                if not lm:
                    raise ValueError("line %d: bad labels %r" % (n, labeltext))
                if lm.group(1) in labels:
                    raise ValueError("line %d: label %s twice" % (n, lm.group(1)))
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        try:
            number = float(value)
        except ValueError:
            raise ValueError("line %d: value %r is not a number" % (n, value))
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ValueError("line %d: sample %s%s twice" % (n, name, labels))
        if types[family] == "counter" and number < 0:
            raise ValueError("line %d: negative counter %s" % (n, name))
        samples[key] = number
    # Histograms: cumulative buckets ending in +Inf == _count.
    for family, kind in types.items():
        if kind != "histogram":
            continue
        groups = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                d = dict(labels)
                le = d.pop("le", None)
                if le is None:
                    raise ValueError("%s bucket without le" % family)
                groups.setdefault(frozenset(d.items()), []).append((float(le), value))
        for rest, buckets in groups.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            if counts != sorted(counts) or buckets[-1][0] != float("inf"):
                raise ValueError("%s buckets are not cumulative up to +Inf" % family)
            if samples.get((family + "_count", rest)) != counts[-1]:
                raise ValueError("%s_count differs from the +Inf bucket" % family)
    return samples


class TestStatusHealthMetrics(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.v = Vocd()

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def metrics(self):
        st, h, body = self.v.request("GET", "/metrics", token=None)
        self.assertEqual(st, 200)
        self.assertTrue(h.get("Content-Type").startswith("text/plain"), h.get("Content-Type"))
        self.assertIn("version=0.0.4", h.get("Content-Type"))
        return parse_prometheus(body.decode("utf-8"))

    def test_healthz(self):
        st, h, body = self.v.request("GET", "/healthz", token=None)
        self.assertEqual((st, body), (200, {"status": "ok"}))
        self.assertTrue(h.get("Content-Type").startswith("application/json"))

    def test_status(self):
        v = self.v
        st, _, s = v.request("GET", "/api/v1/status")
        self.assertEqual(st, 200, s)
        for key in ("version", "uptime_s", "profile", "cases", "store", "writer", "plugins"):
            self.assertIn(key, s)
        self.assertRegex(s["version"], r"^\d+\.\d+\.\d+")
        self.assertIsInstance(s["uptime_s"], int)
        self.assertGreaterEqual(s["uptime_s"], 0)
        for key in ("path", "map_size", "used_bytes", "schema_version"):
            self.assertIn(key, s["store"])
        self.assertEqual(os.path.realpath(s["store"]["path"]), os.path.realpath(v.data_dir))
        self.assertGreater(s["store"]["map_size"], 0)
        self.assertGreater(s["store"]["used_bytes"], 0)
        self.assertLessEqual(s["store"]["used_bytes"], s["store"]["map_size"])
        self.assertEqual(s["store"]["schema_version"], 1)
        self.assertLessEqual({"queue", "queue_limit"}, set(s["writer"]))
        self.assertEqual(s["writer"]["queue_limit"], 10000)
        self.assertIsInstance(s["plugins"], list)
        before = s["cases"]
        v.create_case(subject="计数")
        v.create_case(subject="计数")
        self.assertEqual(v.request("GET", "/api/v1/status")[2]["cases"], before + 2)

    def test_metrics_parse_and_count(self):
        v = self.v
        m0 = self.metrics()
        names = {name for name, _ in m0}
        for name in ("vocd_cases_created_total", "vocd_events_appended_total", "vocd_cases",
                     "vocd_http_responses_total", "vocd_store_map_size_bytes",
                     "vocd_writer_jobs_total"):
            self.assertIn(name, names)

        def value(m, name, **labels):
            return m[(name, frozenset(labels.items()))]

        v.create_case(subject="指标")
        st, _, _ = v.request("POST", "/api/v1/cases", {"text": 5})
        self.assertEqual(st, 400)
        m1 = self.metrics()
        self.assertEqual(value(m1, "vocd_cases_created_total"),
                         value(m0, "vocd_cases_created_total") + 1)
        self.assertEqual(value(m1, "vocd_events_appended_total"),
                         value(m0, "vocd_events_appended_total") + 2)
        self.assertEqual(value(m1, "vocd_cases"), value(m0, "vocd_cases") + 1)
        self.assertGreater(value(m1, "vocd_writer_jobs_total"),
                           value(m0, "vocd_writer_jobs_total"))
        self.assertGreater(value(m1, "vocd_http_responses_total", code="2xx"),
                           value(m0, "vocd_http_responses_total", code="2xx"))
        self.assertGreater(value(m1, "vocd_http_responses_total", code="4xx"),
                           value(m0, "vocd_http_responses_total", code="4xx"))
        # Every counter is monotonic between the two scrapes.
        types = {}
        text = v.request("GET", "/metrics", token=None)[2].decode()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                types[name] = kind
        for key, val in m0.items():
            if types.get(key[0]) == "counter" and key in m1:
                self.assertGreaterEqual(m1[key], val, key)

    def test_parser_rejects_bad_expositions(self):
        # The checker above would catch what a scraper refuses.
        for bad in ("x 1\n", "# TYPE x counter\nx 1\n",
                    "# HELP x h\n# TYPE x counter\nx{a=b} 1\n",
                    "# HELP x h\n# TYPE x counter\nx one\n",
                    "# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\nx 1\ny 1\nx{a=\"1\"} 2\n",
                    "# HELP x h\n# TYPE x gauge\nx 1"):
            with self.assertRaises(ValueError):
                parse_prometheus(bad)
        parse_prometheus('# HELP x h\n# TYPE x gauge\nx{a="1",b="q\\"q"} 1.5e3\nx 2\n')


# ---------------------------------------------------------------------------------------------
class TestAdminReload(ApiCase):
    def test_reload_valid_broken_and_sighup(self):
        with Vocd() as v:
            cid = v.create_case(subject="重载")
            # A valid change: log_level warn. The 'reloaded' info line is then not logged.
            v.write_config({"log_level": "warn"})
            mark = v.log_mark()
            st, _, body = v.request("POST", "/api/v1/admin/reload")
            self.assertEqual(st, 200, body)
            self.assertEqual(body["reloaded"], True)
            time.sleep(0.1)
            # Only the request is logged at the old level; after the swap, warn applies.
            self.assertEqual(v.log()[mark:],
                             "INFO daemon: reload requested api=admin/reload token=admin\n")
            v.write_config({"log_level": "info"})
            mark = v.log_mark()
            self.assertEqual(v.request("POST", "/api/v1/admin/reload")[0], 200)
            v.wait_log(r"^INFO daemon: reloaded", since=mark)

            # Broken: an unknown key on a known line, plus a new token that must not appear.
            tokens = v.base_config()["auth"]["tokens"] + [
                {"name": "newadmin", "role": "admin",
                 "sha256": hashlib.sha256(b"new-admin-token").hexdigest()}]
            good = v.write_config({"auth": {"tokens": tokens}})
            lines = good.splitlines()
            lines.insert(2, "lisen: { http: 127.0.0.1:0 }")  # line 3
            v.write_config(raw="\n".join(lines) + "\n")
            st, _, body = v.request("POST", "/api/v1/admin/reload")
            self.assertEqual(st, 422, body)
            self.assertEqual(body["error"]["code"], "reload_failed")
            self.assertTrue(body["error"]["message"])
            details = body["error"]["details"]
            self.assertTrue(any(re.search(r"vocd\.yaml:3: .*unknown key 'lisen'", d)
                                for d in details), details)
            # The old config stays: the new token is unknown, the old ones work.
            self.assertEqual(v.request("GET", "/api/v1/status", token="new-admin-token")[0], 401)
            self.assertEqual(self.get_case(v, cid)["id"], cid)
            # A wrong type is reported with its line too.
            lines = good.splitlines()
            lines.insert(2, "http:\n  max_body_size: lots")  # lines 3-4
            v.write_config(raw="\n".join(lines) + "\n")
            st, _, body = v.request("POST", "/api/v1/admin/reload")
            self.assertEqual(st, 422, body)
            self.assertTrue(any(re.search(r"vocd\.yaml:4: .*max_body_size", d)
                                for d in body["error"]["details"]), body)
            # Not YAML at all.
            v.write_config(raw="data_dir: [unclosed\n")
            st, _, body = v.request("POST", "/api/v1/admin/reload")
            self.assertEqual(st, 422, body)
            self.assertTrue(any(re.search(r"vocd\.yaml:\d+", d) for d in body["error"]["details"]))

            # SIGHUP with a broken config: logged, the daemon goes on with the old config.
            lines = good.splitlines()
            lines.insert(2, "lisen: { http: 127.0.0.1:0 }")
            v.write_config(raw="\n".join(lines) + "\n")
            mark = v.log_mark()
            v.sighup()
            v.wait_log(r"^ERROR daemon: reload failed", since=mark)
            self.assertRegex(v.log()[mark:], r"vocd\.yaml:3: .*unknown key 'lisen'")
            v.assert_alive()
            self.assertEqual(v.request("GET", "/healthz", token=None)[0], 200)
            self.assertEqual(v.request("GET", "/api/v1/status", token="new-admin-token")[0], 401)
            self.assertEqual(self.get_case(v, cid)["id"], cid)
            # SIGHUP with the fixed config: the new token works.
            v.write_config(raw=good)
            mark = v.log_mark()
            v.sighup()
            v.wait_log(r"^INFO daemon: reloaded", since=mark)
            self.assertEqual(v.request("GET", "/api/v1/status", token="new-admin-token")[0], 200)
            self.assertEqual(v.request("POST", "/api/v1/cases", {"subject": "新令牌"},
                                       token="new-admin-token")[0], 201)


# ---------------------------------------------------------------------------------------------
class TestBackup(ApiCase):
    def test_backup_restores(self):
        with Vocd() as v:
            ids = []
            for i in range(6):
                ids.append(v.create_case(subject="备份 %d" % i, external_id="BK-%d" % i,
                                         text="内容" * (i * 500)))
            self.ok_event(v, ids[0], "assigned", "assigned", data={"department": "质量部"})
            self.ok_event(v, ids[1], "duplicate", "duplicate", data={"of": ids[2]})
            originals = {i: self.get_case(v, i) for i in ids}
            self.assertError(v.request("POST", "/api/v1/admin/backup", token="viewer"), 403,
                             "forbidden")
            st, h, blob = v.request("POST", "/api/v1/admin/backup")
            self.assertEqual(st, 200, blob[:200])
            self.assertEqual(h.get("Content-Type"), "application/octet-stream")
            self.assertIsInstance(blob, bytes)
            self.assertGreater(len(blob), 8192)
            # Writes go on after a backup.
            v.create_case(subject="备份之后")

            restore = tempfile.mkdtemp(prefix="vocd-it-restore-")
            try:
                with open(os.path.join(restore, "data.mdb"), "wb") as f:
                    f.write(blob)
                if shutil.which("mdb_stat"):
                    cp = subprocess.run(["mdb_stat", "-s", "cases", restore],
                                        capture_output=True, text=True, timeout=30)
                    self.assertEqual(cp.returncode, 0, cp.stderr)
                    self.assertRegex(cp.stdout, r"Entries: %d\b" % len(ids))
                    cp = subprocess.run(["mdb_stat", "-a", restore], capture_output=True,
                                        text=True, timeout=30)
                    self.assertEqual(cp.returncode, 0, cp.stderr)
                    for db in ("meta", "cases", "events", "refs"):
                        self.assertIn("Status of %s" % db, cp.stdout)
                with Vocd(config_extra={"data_dir": restore}) as r:
                    got = self.list_all(r)
                    self.assertEqual(sorted(c["id"] for c in got), sorted(ids))
                    for i in ids:
                        self.assertEqual(self.get_case(r, i), originals[i])
                    # Idempotency keys came along, and new ids follow the old ones.
                    st, _, body = r.request("POST", "/api/v1/cases",
                                            {"subject": "x", "external_id": "BK-3"})
                    self.assertEqual((st, body["id"]), (200, ids[3]))
                    self.assertGreater(r.create_case(subject="恢复后"), max(ids))
            finally:
                shutil.rmtree(restore, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
class TestShutdown(ApiCase):
    def test_sigterm_drains_inflight_posts(self):
        """Complete POSTs in flight at SIGTERM: each gets its reply (201, or 503 with
        Retry-After once draining), the daemon exits 0 and every 201 case is durable."""
        with Vocd() as v:
            n = 12
            results = [None] * n
            ready = threading.Barrier(n + 1)
            text = "慢" * 150000  # ~450 KB each: reading and writing take a moment

            def worker(i):
                conn = http.client.HTTPConnection(v.host, v.port, timeout=30)
                try:
                    conn.request("GET", "/healthz")  # the connection is accepted now
                    conn.getresponse().read()
                    body = json.dumps({"subject": "drain %d" % i, "external_id": "DR-%d" % i,
                                       "text": text}, ensure_ascii=False).encode()
                    ready.wait()
                    conn.request("POST", "/api/v1/cases", body,
                                 {"Authorization": "Bearer " + TOKENS["admin"],
                                  "Content-Type": "application/json"})
                    r = conn.getresponse()
                    results[i] = (r.status, r.getheader("Retry-After"), r.read())
                except Exception as e:  # noqa: BLE001 - recorded and asserted below
                    results[i] = ("exception", repr(e), b"")
                finally:
                    conn.close()

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            ready.wait()
            time.sleep(0.02)
            v.proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(60)
            rc = v.wait_exit(30)
            self.assertEqual(rc, 0, v.log()[-2000:])
            created = {}
            summary = [r[0] if r[0] != "exception" else r[1] for r in results]
            for i, res in enumerate(results):
                self.assertNotEqual(res[0], "exception", "request %d lost its reply; all: %s"
                                    % (i, summary))
                self.assertIn(res[0], (201, 503), res)
                if res[0] == 503:
                    self.assertTrue(res[1] and res[1].isdigit(), res)
                    self.assertEqual(json.loads(res[2])["error"]["code"], "unavailable")
                else:
                    created["DR-%d" % i] = json.loads(res[2])["id"]
            v.start()
            for ext, cid in created.items():
                case = self.get_case(v, cid)
                self.assertEqual(case["external_id"], ext)
                self.assertEqual(case["text"], text)
            listed = {c["id"] for c in self.list_all(v)}
            self.assertEqual(listed, set(created.values()),
                             "a request answered 503 was written anyway, or a 201 is missing")

    def test_sigterm_waits_for_requests_being_sent(self):
        """Requests whose body is still arriving when SIGTERM comes are on accepted
        connections: each must get a reply (not a closed connection)."""
        with Vocd() as v:
            n = 6
            results = [None] * n
            connected = threading.Barrier(n + 1)
            signalled = threading.Event()

            def worker(i):
                conn = http.client.HTTPConnection(v.host, v.port, timeout=30)
                try:
                    conn.request("GET", "/healthz")
                    conn.getresponse().read()
                    body = json.dumps({"subject": "slow %d" % i, "text": "x" * 20000}).encode()
                    conn.putrequest("POST", "/api/v1/cases")
                    conn.putheader("Authorization", "Bearer " + TOKENS["admin"])
                    conn.putheader("Content-Type", "application/json")
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders()
                    conn.send(body[:1000])
                    connected.wait()
                    signalled.wait(10)
                    time.sleep(0.2)
                    conn.send(body[1000:])
                    r = conn.getresponse()
                    results[i] = (r.status, r.getheader("Retry-After"), r.read())
                except Exception as e:  # noqa: BLE001
                    results[i] = ("exception", repr(e), b"")
                finally:
                    conn.close()

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            connected.wait()
            time.sleep(0.1)
            v.proc.send_signal(signal.SIGTERM)
            signalled.set()
            for t in threads:
                t.join(60)
            rc = v.wait_exit(30)
            self.assertEqual(rc, 0)
            lost = [i for i, r in enumerate(results) if r[0] == "exception"]
            self.assertEqual(lost, [], "requests on accepted connections got no reply: %s"
                             % [results[i][1] for i in lost])
            for res in results:
                self.assertIn(res[0], (201, 503), res)
                if res[0] == 503:
                    self.assertTrue(res[1], "503 without Retry-After")
            v.start()


    def test_sigterm_prompt_after_clients_hung_up(self):
        """Clients that send a request and hang up (RST) before the reply: the replies
        cannot be written, and a later SIGTERM must not wait for them (the drain timeout is
        30 s)."""
        import socket
        import struct
        with Vocd() as v:
            n = 8
            for i in range(n):
                payload = json.dumps({"subject": "gone %d" % i, "external_id": "GONE-%d" % i},
                                     ensure_ascii=False).encode()
                s = socket.create_connection((v.host, v.port), timeout=10)
                s.sendall(b"POST /api/v1/cases HTTP/1.1\r\nHost: vocd\r\n"
                          b"Authorization: Bearer " + TOKENS["admin"].encode() + b"\r\n"
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
                # Linger 0: close sends RST, so writing the reply fails.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            # The requests were read and written (durable) even though nobody got a reply.
            deadline = time.time() + 10
            while time.time() < deadline:
                st, _, body = v.request("GET", q("/api/v1/cases", limit=100))
                self.assertEqual(st, 200, body)
                if len(body["cases"]) == n:
                    break
                time.sleep(0.05)
            self.assertEqual(len(body["cases"]), n, body)
            time.sleep(0.3)  # the failed replies are behind us
            t0 = time.monotonic()
            v.proc.send_signal(signal.SIGTERM)
            rc = v.wait_exit(30)
            took = time.monotonic() - t0
            self.assertEqual(rc, 0, v.log()[-2000:])
            self.assertLess(took, 10, "SIGTERM waited for replies nobody could receive")
            self.assertNotIn("drain timed out", v.log())
            self.assertRegex(v.log(), r"draining signal=SIGTERM inflight=0\b")
            v.start()


# ---------------------------------------------------------------------------------------------
class TestStartup(ApiCase):
    def test_version(self):
        with Vocd(start=False) as v:
            cp = subprocess.run([v.binary, "--version"], capture_output=True, text=True,
                                timeout=30)
            self.assertEqual(cp.returncode, 0)
            self.assertRegex(cp.stdout.strip(), r"^vocd \d+\.\d+\.\d+")

    def test_check(self):
        with Vocd(start=False) as v:
            cp = v.run("--check")
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
            with open(v.config_path, encoding="utf-8") as f:
                raw = f.read().splitlines()
            raw = [l for l in raw if not l.startswith("log_level:")]
            raw.insert(2, "lisen: 127.0.0.1:1")
            raw.insert(3, "log_level: loud")
            v.write_config(raw="\n".join(raw) + "\n")
            cp = v.run("--check")
            self.assertEqual(cp.returncode, 1, cp.stdout + cp.stderr)
            self.assertRegex(cp.stdout, r"(?m)^\S*vocd\.yaml:3: .*lisen")
            self.assertRegex(cp.stdout, r"(?m)^\S*vocd\.yaml:4: .*log_level")
            # Every problem is a file:line line.
            problems = [l for l in cp.stdout.splitlines() if l.strip()]
            self.assertTrue(problems)
            for line in problems:
                self.assertRegex(line, r"^\S+:\d+: ")
            # Starting with it fails the same way, exit 1, message on stderr.
            proc = subprocess.run([v.binary, "-c", v.config_path], capture_output=True,
                                  text=True, timeout=30)
            self.assertEqual(proc.returncode, 1)
            self.assertRegex(proc.stderr, r"vocd\.yaml:3: .*lisen")
            self.assertFalse(os.path.exists(v.data_dir), "a refused start created the store")

    def test_check_shipped_config(self):
        shipped = os.path.join(SOURCE_DIR, "etc", "vocd.yaml")
        with Vocd(start=False) as v:
            cp = subprocess.run([v.binary, "-c", shipped, "--check"], capture_output=True,
                                text=True, timeout=60)
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
            self.assertIn("ok", cp.stdout)
            # --check compiles the profile too: a broken one would have failed above.
            self.assertRegex(open(shipped, encoding="utf-8").read(),
                             r"(?m)^profile: \.\./scripts/profiles/voc-general\.lua")

    def test_newer_schema_refused(self):
        if not (shutil.which("mdb_dump") and shutil.which("mdb_load")):
            self.skipTest("lmdb-utils (mdb_dump, mdb_load) not installed")
        with Vocd() as v:
            cid = v.create_case(subject="旧数据")
            v.sigterm()
            dump = subprocess.run(["mdb_dump", "-s", "meta", v.data_dir], capture_output=True,
                                  text=True, timeout=30)
            self.assertEqual(dump.returncode, 0, dump.stderr)
            key = "schema_version".encode().hex()
            lines = dump.stdout.splitlines()
            i = lines.index(" " + key)
            self.assertEqual(lines[i + 1], " 00000001")
            lines[i + 1] = " 00000063"
            load = subprocess.run(["mdb_load", "-s", "meta", v.data_dir],
                                  input="\n".join(lines) + "\n", capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(load.returncode, 0, load.stderr)
            with open(os.path.join(v.data_dir, "data.mdb"), "rb") as f:
                before = f.read()
            proc = subprocess.run([v.binary, "-c", v.config_path], capture_output=True,
                                  text=True, timeout=30)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertRegex(proc.stderr, r"schema version 99\b")
            self.assertRegex(proc.stderr, r"\b1\b")
            self.assertNotIn("listening", proc.stderr)
            with open(os.path.join(v.data_dir, "data.mdb"), "rb") as f:
                after = f.read()
            self.assertEqual(before, after, "the refused store was changed")
            # Back to version 1: it opens again with the data.
            lines[i + 1] = " 00000001"
            subprocess.run(["mdb_load", "-s", "meta", v.data_dir],
                           input="\n".join(lines) + "\n", check=True, capture_output=True,
                           text=True, timeout=30)
            v.start()
            self.assertEqual(self.get_case(v, cid)["subject"], "旧数据")


# ---------------------------------------------------------------------------------------------
class TestStoreFull(ApiCase):
    def test_map_full_503_and_nothing_half_written(self):
        mib = 1024 * 1024
        with Vocd(config_extra={"store": {"map_size": "1MiB", "max_map_size": "2MiB"}}) as v:
            self.assertEqual(v.request("GET", "/api/v1/status")[2]["store"]["map_size"], mib)
            rnd = random.Random(7)
            acked, refused = {}, None
            texts = {}
            for i in range(400):
                ext = "FULL-%03d" % i
                texts[ext] = "".join(rnd.choice(string.ascii_letters) for _ in range(40000))
                st, h, body = v.request("POST", "/api/v1/cases",
                                        {"external_id": ext, "subject": "大 %d" % i,
                                         "text": texts[ext]})
                if st == 503:
                    refused = ext
                    self.assertError((st, h, body), 503, "unavailable")
                    self.assertRegex(h.get("Retry-After") or "", r"^\d+$")
                    break
                self.assertEqual(st, 201, body)
                acked[ext] = body["id"]
            self.assertIsNotNone(refused, "the store never filled up")
            self.assertGreater(len(acked), 10)
            status = v.request("GET", "/api/v1/status")[2]
            self.assertEqual(status["store"]["map_size"], 2 * mib, "the map did not grow once")
            self.assertEqual(status["cases"], len(acked))
            st, _, metrics = v.request("GET", "/metrics", token=None)
            m = parse_prometheus(metrics.decode())
            self.assertGreaterEqual(m[("vocd_writer_map_full_retries_total", frozenset())], 1)
            self.assertGreaterEqual(m[("vocd_writer_unavailable_total", frozenset())], 1)
            self.assertIn("map grown", v.log())

            def verify(d):
                cases = self.list_all(d)
                by_ext = {c_["subject"]: c_["id"] for c_ in cases}
                self.assertEqual(len(cases), len(acked))
                self.assertEqual(sorted(c_["id"] for c_ in cases), sorted(acked.values()))
                for ext, cid in acked.items():
                    case = self.get_case(d, cid)
                    self.assertEqual(case["external_id"], ext)
                    self.assertEqual(case["text"], texts[ext])
                    self.assertEqual([e["type"] for e in case["events"]],
                                     ["received", "classified"])
                self.assertNotIn("大 %d" % int(refused[5:]), by_ext)

            verify(v)
            # Reads keep working and small requests get a clean answer either way.
            self.assertEqual(v.request("GET", "/healthz", token=None)[0], 200)
            # After a restart with room to grow: the refused record is new, the others known.
            v.sigterm()
            v.write_config({"store": {"map_size": "1MiB", "max_map_size": "64MiB"}})
            v.start()
            verify(v)
            st, _, body = v.request("POST", "/api/v1/cases",
                                    {"external_id": refused, "subject": "重试",
                                     "text": texts[refused]})
            self.assertEqual((st, body.get("created")), (201, True), body)
            first = sorted(acked)[0]
            st, _, body = v.request("POST", "/api/v1/cases",
                                    {"external_id": first, "subject": "重试"})
            self.assertEqual((st, body), (200, {"id": acked[first], "created": False}))


if __name__ == "__main__":
    unittest.main(verbosity=2)

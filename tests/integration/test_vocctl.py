"""Black-box tests of vocctl (CONTRACT.md "Binaries", docs/vocctl.md): every online command
against the real vocd ($VOCD_BIN through vocd_harness.Vocd), run as $VOCCTL_BIN, checking
stdout, stderr and exit codes (0 ok, 1 error, 2 usage).

A few answers vocd does not give yet (SLA clocks in a case, the breaches and reports
endpoints, a 503, a backup cut off in the middle) come from a small stand-in HTTP server
that answers exactly as docs/api.md describes, so the client side of those is tested too."""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocctl_bin, sanitizer_report  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VOCCTL = vocctl_bin()
COMMANDS = ["status", "cases", "show", "event", "breaches", "report", "reload", "backup"]


def width(text):
    """Terminal columns of text: East Asian wide and fullwidth characters take two."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CtlCase(unittest.TestCase):
    def ctl(self, v, *args, token="admin", url=None, tz="UTC", env=None, stdin=None):
        """Run vocctl against v (a Vocd, or a stand-in with .url) with VOCD_URL/VOCD_TOKEN."""
        e = {k: val for k, val in os.environ.items() if not k.startswith("VOCD_")}
        e["VOCD_URL"] = url or v.url
        if token is not None:
            e["VOCD_TOKEN"] = v.tokens.get(token, token) if hasattr(v, "tokens") else token
        e["TZ"] = tz
        e["LC_ALL"] = "C.UTF-8"
        e.update(env or {})
        cp = subprocess.run([VOCCTL] + list(args), capture_output=True, env=e, timeout=120,
                            stdin=subprocess.DEVNULL if stdin is None else stdin)
        if cp.returncode < 0:
            self.fail("vocctl %s died by signal %d: %s" % (args, -cp.returncode, cp.stderr))
        cp.out = cp.stdout.decode("utf-8")
        cp.err = cp.stderr.decode("utf-8")
        report = sanitizer_report(cp.err)
        if report:
            self.fail("sanitizer report from vocctl %s:\n%s" % (" ".join(args), report))
        return cp

    def ok(self, v, *args, **kw):
        cp = self.ctl(v, *args, **kw)
        self.assertEqual(cp.returncode, 0, "vocctl %s: %s" % (" ".join(args), cp.err))
        return cp

    def fails(self, v, *args, code=1, err=None, **kw):
        cp = self.ctl(v, *args, **kw)
        self.assertEqual(cp.returncode, code, "vocctl %s: out %r err %r"
                         % (" ".join(args), cp.out, cp.err))
        if err:
            self.assertRegex(cp.err, err)
        return cp

    @staticmethod
    def table(out):
        """Lines of a table: header first, without the trailing empty line."""
        return [line for line in out.split("\n") if line]

    def assertAligned(self, lines, column):
        """Every line's cell in `column` (the header name) starts at the same screen column."""
        start = width(lines[0][:lines[0].index(column)])
        for line in lines[1:]:
            # The cell starts after the run of spaces that ends at or after `start`.
            cols, i = 0, 0
            while i < len(line) and cols < start:
                cols += width(line[i])
                i += 1
            self.assertEqual(cols, start, "misaligned %r in\n%s" % (line, "\n".join(lines)))
            self.assertNotEqual(line[i - 1:i], "", line)
            self.assertEqual(line[i - 1], " ", "cell before %s runs into it: %r" % (column, line))
            self.assertNotEqual(line[i:i + 1], " ", "cell of %s not at its column: %r"
                                % (column, line))


# ---------------------------------------------------------------------------------------------
class TestUsage(CtlCase):
    """No daemon needed: usage errors are exit 1 before any request is made."""

    class Nowhere:
        url = "http://127.0.0.1:%d" % closed_port()

    def test_help_for_every_command(self):
        cp = self.ok(self.Nowhere, "--help")
        for name in COMMANDS + ["rules"]:
            self.assertRegex(cp.out, r"(?m)^  %s\s+\S" % name)
        for name in COMMANDS:
            cp = self.ok(self.Nowhere, name, "--help")
            self.assertTrue(cp.out.startswith("usage: vocctl %s" % name), cp.out)
            self.assertEqual(cp.err, "")
            self.assertEqual(self.ok(self.Nowhere, "help", name).out, cp.out)
        self.assertRegex(self.ok(self.Nowhere, "--version").out, r"^vocctl \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_1_before_any_request(self):
        n = self.Nowhere
        self.fails(n, code=1, err=r"a command is required")
        self.fails(n, "bogus", code=1, err=r"vocctl: unknown command 'bogus'")
        self.fails(n, "--bogus", "status", code=1, err=r"unknown option '--bogus'")
        self.fails(n, "status", "extra", code=1, err=r"unexpected argument 'extra'")
        self.fails(n, "cases", "--limit", "x", code=1, err=r"--limit needs a positive number")
        self.fails(n, "cases", "--limit", "0", code=1, err=r"--limit")
        self.fails(n, "cases", "--limit", code=1, err=r"option '--limit' needs a value")
        self.fails(n, "cases", "--since", "2026-02-30", code=1, err=r"no such date")
        self.fails(n, "cases", "--nope", code=1, err=r"vocctl cases: unknown option '--nope'")
        self.fails(n, "show", code=1, err=r"vocctl show: a case ID is required")
        self.fails(n, "show", "abc", code=1, err=r"not a case ID: 'abc'")
        self.fails(n, "show", "1", "2", code=1)
        self.fails(n, "event", "1", code=1, err=r"wants a case ID and an event TYPE")
        self.fails(n, "event", "x", "note", code=1, err=r"not a case ID")
        self.fails(n, "event", "1", "note", "--data", "novalue", code=1, err=r"KEY=VALUE")
        self.fails(n, "event", "1", "note", "--data-json", "[1]", code=1, err=r"JSON object")
        self.fails(n, "event", "1", "note", "--data-json", "{", code=1, err=r"--data-json")
        self.fails(n, "report", "--format", "pdf", code=1, err=r"json, csv or html")
        self.fails(n, "report", "--format", "csv", "--json", code=1)
        self.fails(n, "backup", code=1, err=r"wants one FILE")
        self.fails(n, "--url", "ftp://x", "status", code=1, err=r"http:// or https://")
        cp = self.fails(n, "cases", "--nope", code=1)
        self.assertIn("usage: vocctl cases", cp.err)  # the synopsis, not the whole help
        self.assertLess(len(cp.err.splitlines()), 5)
        self.assertEqual(cp.out, "")

    def test_cannot_connect(self):
        port = closed_port()
        for args in (["status"], ["cases"], ["show", "1"], ["reload"]):
            self.fails(self.Nowhere, *args, url="http://127.0.0.1:%d" % port,
                       err=r"^vocctl: cannot connect to http://127\.0\.0\.1:%d: .+" % port)
        d = tempfile.mkdtemp(prefix="vocctl-it-")
        try:
            target = os.path.join(d, "b.mdb")
            self.fails(self.Nowhere, "backup", target, url="http://127.0.0.1:%d/" % port,
                       err=r"cannot connect")
            self.assertEqual(os.listdir(d), [])
        finally:
            shutil.rmtree(d)


# ---------------------------------------------------------------------------------------------
class TestOnline(CtlCase):
    """Every online command against the real daemon."""

    @classmethod
    def setUpClass(cls):
        cls.v = Vocd()
        v = cls.v
        cls.ids = {}
        cls.ids["rice"] = v.create_case(
            external_id="WO-1", channel="hotline", received_at="2026-11-23T09:15:00+08:00",
            customer={"name": "张伟", "contact": "13812345678", "region": "上海"},
            product={"name": "智能电饭煲", "model": "RC-50", "batch": "B20261101"},
            subject="电饭煲无法加热", text="用了三天就不能加热了。\n指示灯一直闪。",
            expected="更换新机", fields={"工单类型": "投诉"},
            attachments=[{"name": "photo.jpg", "type": "image/jpeg", "size": 2048,
                          "sha256": "ab" * 32}])
        cls.ids["late"] = v.create_case(
            channel="web", received_at="2026-11-23T00:30:00+08:00",  # 11-22 16:30 UTC
            subject="Late night question about the warranty period of model RC-50 "
                    "and whether it covers the heating plate")
        cls.ids["escape"] = v.create_case(
            channel="email", received_at="2026-11-20T10:00:00Z",
            subject="red \x1b[31malert\x1b[0m bell\x07 end")
        cls.ids["quality"] = v.create_case(
            channel="hotline", received_at="2026-11-21T10:00:00Z",
            subject="質量問題", text="產品質量不好")

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def api(self, method, path, body=None, token="admin"):
        return self.v.request(method, path, body, token=token)

    def test_status(self):
        cp = self.ok(self.v, "status")
        st, _, status = self.api("GET", "/api/v1/status")
        self.assertEqual(st, 200)
        self.assertRegex(cp.out, r"(?m)^version\s+%s$" % re.escape(status["version"]))
        self.assertRegex(cp.out, r"(?m)^cases\s+%d$" % status["cases"])
        self.assertRegex(cp.out, r"(?m)^store\s+%s$" % re.escape(status["store"]["path"]))
        self.assertRegex(cp.out, r"(?m)^uptime\s+\d+[smhd]")
        self.assertRegex(cp.out, r"(?m)^write queue\s+\d+ of %d$" % status["writer"]["queue_limit"])
        js = json.loads(self.ok(self.v, "--json", "status").out)
        self.assertEqual(set(js), set(status))
        self.assertEqual(js["store"], status["store"])
        # --json also works after the command.
        self.assertEqual(set(json.loads(self.ok(self.v, "status", "--json").out)), set(status))

    def test_wrong_token_and_no_token(self):
        self.fails(self.v, "status", token="wrong-token",
                   err=r"^vocctl: unauthorized: unknown token\n$")
        self.fails(self.v, "cases", token="wrong-token", err=r"^vocctl: unauthorized: ")
        self.fails(self.v, "status", token=None, err=r"^vocctl: unauthorized: .*Bearer")
        # --token beats VOCD_TOKEN.
        self.ok(self.v, "--token", self.v.tokens["admin"], "status", token="wrong-token")
        # The ingest role may not read: vocd's 403 comes through as is.
        self.fails(self.v, "cases", token="ingest", err=r"^vocctl: forbidden: ")

    def test_cases_table(self):
        cp = self.ok(self.v, "cases")
        lines = self.table(cp.out)
        self.assertEqual(lines[0].split(), ["ID", "RECEIVED", "STATE", "CHANNEL", "KIND",
                                            "CATEGORY", "SEVERITY", "DEPARTMENT", "P",
                                            "BREACHED", "SUBJECT"])
        self.assertEqual(len(lines), 1 + len(self.ids))
        listed = [int(line.split()[0]) for line in lines[1:]]
        st, _, body = self.api("GET", "/api/v1/cases")
        self.assertEqual(listed, [c["id"] for c in body["cases"]])  # newest first, as vocd
        for column in ("RECEIVED", "STATE", "CHANNEL", "DEPARTMENT", "BREACHED", "SUBJECT"):
            self.assertAligned(lines, column)
        rice = next(line for line in lines if line.split()[0] == str(self.ids["rice"]))
        # Local time = TZ: 09:15 +08:00 is 01:15 UTC.
        self.assertIn("2026-11-23 01:15", rice)
        self.assertIn("电饭煲无法加热", rice)
        # Long subjects are cut to 50 columns with "…".
        late = next(line for line in lines if line.split()[0] == str(self.ids["late"]))
        subject = late[late.index("Late night"):]
        self.assertTrue(subject.endswith("…"), subject)
        self.assertEqual(width(subject), 50)
        # Control characters from customers never reach the terminal.
        self.assertNotIn("\x1b", cp.out)
        self.assertNotIn("\x07", cp.out)
        self.assertIn("red  [31malert [0m bell  end", cp.out)

    def test_cases_times_follow_tz(self):
        cp = self.ok(self.v, "cases", tz="Asia/Shanghai")
        self.assertIn("2026-11-23 09:15", cp.out)
        self.assertIn("2026-11-23 00:30", cp.out)
        cp = self.ok(self.v, "cases", tz="America/New_York")
        self.assertIn("2026-11-22 20:15", cp.out)

    def ids_of(self, cp):
        lines = self.table(cp.out)
        if lines == ["no cases"]:
            return []
        return [int(line.split()[0]) for line in lines[1:]]

    def test_cases_filters_match_the_api(self):
        for args, params in (
                (["--channel", "hotline"], {"channel": "hotline"}),
                (["--state", "classified"], {"state": "classified"}),
                (["--kind", "complaint"], {"kind": "complaint"}),
                (["--category", "产品质量"], {"category": "产品质量"}),
                (["--department", "质量部"], {"department": "质量部"}),
                (["--breached"], {"breached": "true"}),
                (["--q", "质量"], {"q": "质量"}),
                (["--q", "電飯煲"], {"q": "電飯煲"}),
                (["--since", "2026-11-21T00:00:00Z", "--until", "2026-11-23T00:00:00Z"],
                 {"since": "2026-11-21T00:00:00Z", "until": "2026-11-23T00:00:00Z"})):
            st, _, body = self.api("GET", "/api/v1/cases?" + urllib.parse.urlencode(params))
            self.assertEqual(st, 200, body)
            cp = self.ok(self.v, "cases", *args)
            self.assertEqual(self.ids_of(cp), [c["id"] for c in body["cases"]], args)
        self.assertEqual(self.ids_of(self.ok(self.v, "cases", "--channel", "nowhere")), [])
        self.assertEqual(self.ok(self.v, "cases", "--channel", "nowhere").out, "no cases\n")
        # Filters the server refuses are its 400, exit 1.
        self.fails(self.v, "cases", "--since", "yesterday-ish", err=r"^vocctl: bad_request: ")

    def test_cases_since_is_a_local_day(self):
        # 2026-11-23 in Shanghai starts at 11-22 16:00 UTC: the 00:30 case is on that day.
        got = self.ids_of(self.ok(self.v, "cases", "--since", "2026-11-23", tz="Asia/Shanghai"))
        self.assertEqual(sorted(got), sorted([self.ids["rice"], self.ids["late"]]))
        got = self.ids_of(self.ok(self.v, "cases", "--since", "2026-11-23", tz="UTC"))
        self.assertEqual(got, [self.ids["rice"]])
        got = self.ids_of(self.ok(self.v, "cases", "--until", "2026-11-23", tz="Asia/Shanghai"))
        self.assertEqual(sorted(got), sorted([self.ids["escape"], self.ids["quality"]]))

    def test_cases_paging(self):
        cp = self.ok(self.v, "cases", "--limit", "2")
        self.assertEqual(len(self.ids_of(cp)), 2)
        self.assertIn("--all", cp.err)  # says there is more
        every = self.ids_of(self.ok(self.v, "cases", "--limit", "1", "--all"))
        self.assertEqual(sorted(every), sorted(self.ids.values()))
        self.assertEqual(len(every), len(set(every)))
        js = json.loads(self.ok(self.v, "cases", "--all", "--limit", "3", "--json").out)
        self.assertEqual([c["id"] for c in js["cases"]], every)
        self.assertIsNone(js["next_cursor"])
        # --json without --all: the server's page as is, cursor included.
        page = json.loads(self.ok(self.v, "--json", "cases", "--limit", "2").out)
        self.assertEqual(len(page["cases"]), 2)
        self.assertIsInstance(page["next_cursor"], str)

    def test_show(self):
        cid = self.ids["rice"]
        cp = self.ok(self.v, "show", str(cid), tz="Asia/Shanghai")
        out = cp.out
        self.assertTrue(out.startswith("Case %d  [classified]\n" % cid), out)
        self.assertRegex(out, r"(?m)^subject\s+电饭煲无法加热$")
        self.assertRegex(out, r"(?m)^received\s+2026-11-23 09:15:00 \+0800$")
        self.assertRegex(out, r"(?m)^channel\s+hotline, external id WO-1, source customer$")
        self.assertRegex(out, r"(?m)^customer\s+张伟 · 13812345678 · 上海$")
        self.assertRegex(out, r"(?m)^product\s+智能电饭煲 · RC-50 · B20261101$")
        self.assertRegex(out, r"(?m)^expected\s+更换新机$")
        self.assertRegex(out, r"(?m)^attachments\s+photo\.jpg \(image/jpeg, 2\.0 KiB\)$")
        self.assertRegex(out, r"(?m)^fields\s+工单类型=投诉$")
        self.assertIn("\nText:\n  用了三天就不能加热了。\n  指示灯一直闪。\n", out)
        self.assertRegex(out, r"(?m)^Classification:\n  kind\s+\w+")
        self.assertRegex(out, r"(?m)^  priority\s+\d$")
        self.assertIn("\nClocks:\n", out)
        events = out[out.index("\nEvents:\n") + 9:]
        lines = self.table(events)
        self.assertEqual(lines[0].split(), ["SEQ", "AT", "TYPE", "ACTOR", "NOTE", "DATA"])
        self.assertRegex(lines[1], r"^\s+1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  received ")
        self.assertRegex(lines[2], r"^\s+2  .*  classified  ")
        self.assertAligned(lines, "TYPE")
        # --json is the server's case.
        st, _, case = self.api("GET", "/api/v1/cases/%d" % cid)
        self.assertEqual(json.loads(self.ok(self.v, "show", str(cid), "--json").out), case)

    def test_show_unknown_case(self):
        cp = self.fails(self.v, "show", "999999", err=r"^vocctl: not_found: .*999999")
        self.assertEqual(cp.out, "")
        self.fails(self.v, "event", "999999", "note", err=r"^vocctl: not_found: ")

    def test_event(self):
        cid = self.v.create_case(subject="事件测试", channel="web")
        cp = self.ok(self.v, "event", str(cid), "assigned", "--data", "department=质量部",
                     "--note", "转质量部处理", "--actor", "王芳")
        self.assertEqual(cp.out, "case %d: event 3 'assigned' recorded, state assigned\n" % cid)
        self.ok(self.v, "event", str(cid), "note", "--data", "n=42", "--data", "neg=-3",
                "--data", "zero=0", "--data", "code=007", "--data", "yes=true",
                "--data", "no=false", "--data", "text=a=b", "--data", "nested=x",
                "--data-json", '{"nested": {"a": [1, 2]}, "keep": "json"}')
        st, _, case = self.api("GET", "/api/v1/cases/%d" % cid)
        assigned, note = case["events"][2], case["events"][3]
        self.assertEqual((assigned["type"], assigned["actor"], assigned["note"]),
                         ("assigned", "王芳", "转质量部处理"))
        self.assertEqual(assigned["data"], {"department": "质量部"})
        self.assertEqual(note["data"], {"n": 42, "neg": -3, "zero": 0, "code": "007",
                                        "yes": True, "no": False, "text": "a=b",
                                        "nested": "x", "keep": "json"})
        self.assertEqual(note["actor"], "admin")  # the token's name by default
        # Nested data from --data-json.
        self.ok(self.v, "event", str(cid), "note", "--data-json", '{"a": {"b": [1, "二"]}}')
        st, _, case = self.api("GET", "/api/v1/cases/%d" % cid)
        self.assertEqual(case["events"][-1]["data"], {"a": {"b": [1, "二"]}})
        # --json: the server's answer.
        js = json.loads(self.ok(self.v, "event", str(cid), "planned", "--json").out)
        self.assertEqual(js["state"], "planned")
        self.assertEqual(js["seq"], 6)
        # Refused by the lifecycle: vocd's 409 message, exit 1, nothing recorded.
        self.fails(self.v, "event", str(cid), "verified",
                   err=r"^vocctl: conflict: .*'verified'.*\n$")
        self.fails(self.v, "event", str(cid), "revisited", "--data", "satisfaction=9",
                   err=r"^vocctl: [a-z_]+: .*satisfaction")
        st, _, case = self.api("GET", "/api/v1/cases/%d" % cid)
        self.assertEqual(len(case["events"]), 6)
        # The timeline shows what was recorded.
        out = self.ok(self.v, "show", str(cid)).out
        self.assertRegex(out, r"(?m)^\s+3  .*  assigned\s+王芳\s+转质量部处理\s+department=质量部$")

    def test_breaches_and_report(self):
        # The endpoints come with a later task: until then vocd's 404 is printed cleanly.
        for args, path in ((["breaches"], "/api/v1/breaches"),
                           (["report"], "/api/v1/reports"),
                           (["report", "--from", "2026-11-01", "--to", "2026-12-01",
                             "--format", "csv"],
                            "/api/v1/reports?from=2026-11-01&to=2026-12-01&format=csv")):
            st, _, body = self.api("GET", path)
            if st == 404:
                cp = self.fails(self.v, *args, err=r"^vocctl: not_found: .+\n$")
                self.assertEqual(cp.out, "")
            else:
                self.assertEqual(st, 200, body)
                cp = self.ok(self.v, *args)
                if "csv" in args:
                    self.assertEqual(cp.stdout, body)
                else:
                    self.assertTrue(cp.out.strip())

    def test_reload(self):
        with Vocd() as v:
            cp = self.ok(v, "reload")
            self.assertEqual(cp.out, "reloaded, profile (none)\n")
            self.assertEqual(json.loads(self.ok(v, "reload", "--json").out)["reloaded"], True)
            good = v.write_config()
            lines = good.splitlines()
            lines.insert(2, "lisen: { http: 127.0.0.1:0 }")  # line 3
            lines.insert(3, "http:\n  max_body_size: lots")  # lines 4-5
            v.write_config(raw="\n".join(lines) + "\n")
            cp = self.fails(v, "reload", err=r"^vocctl: reload_failed: ")
            details = cp.err.splitlines()[1:]
            self.assertTrue(any(re.search(r"vocd\.yaml:3: .*lisen", d) for d in details), cp.err)
            self.assertTrue(any(re.search(r"vocd\.yaml:5: .*max_body_size", d) for d in details),
                            cp.err)
            self.assertEqual(cp.out, "")
            self.fails(v, "reload", token="viewer", err=r"^vocctl: forbidden: ")
            v.write_config(raw=good)
            self.ok(v, "reload")

    def test_backup(self):
        d = tempfile.mkdtemp(prefix="vocctl-it-")
        try:
            target = os.path.join(d, "vocd-backup.mdb")
            cp = self.ok(self.v, "backup", target)
            size = os.path.getsize(target)
            self.assertRegex(cp.out, r"^backup: %d bytes \(.*\) written to %s\n$"
                             % (size, re.escape(target)))
            self.assertEqual(sorted(os.listdir(d)), ["vocd-backup.mdb"])  # no .tmp left
            self.assertEqual(os.stat(target).st_mode & 0o777, 0o600)
            if shutil.which("mdb_stat"):
                # -n: a plain file, not a folder (mdb_stat then adds FILE-lock beside it).
                st = subprocess.run(["mdb_stat", "-n", "-s", "cases", target],
                                    capture_output=True, text=True, timeout=30)
                self.assertEqual(st.returncode, 0, st.stderr)
                _, _, status = self.api("GET", "/api/v1/status")
                self.assertRegex(st.stdout, r"Entries: %d\b" % status["cases"])
                os.unlink(target + "-lock")
            # Again over the existing file: replaced, still readable.
            js = json.loads(self.ok(self.v, "backup", "--json", target).out)
            self.assertEqual(js, {"file": target, "bytes": os.path.getsize(target)})
            # Refused (viewer may not back up): the old FILE stays as it was, no .tmp.
            with open(target, "rb") as f:
                before = f.read()
            self.fails(self.v, "backup", target, token="viewer", err=r"^vocctl: forbidden: ")
            with open(target, "rb") as f:
                self.assertEqual(f.read(), before)
            self.assertEqual(sorted(os.listdir(d)), ["vocd-backup.mdb"])
            # A folder that does not exist: nothing is asked of vocd, exit 1.
            self.fails(self.v, "backup", os.path.join(d, "no", "such", "x.mdb"),
                       err=r"^vocctl: cannot create .*x\.mdb\.tmp: No such file")
        finally:
            shutil.rmtree(d)


# ---------------------------------------------------------------------------------------------
RICH_CASE = {
    "id": 7, "state": "assigned", "created_at": "2026-11-23T01:15:00.123Z",
    "updated_at": "2026-11-23T02:00:00.000Z", "external_id": None, "channel": "hotline",
    "source": "customer", "received_at": "2026-11-23T01:15:00.000Z",
    "customer": {"name": "李娜", "contact": "138****5678"}, "product": {},
    "subject": "批次问题", "text": "", "expected": "", "attachments": [], "fields": {},
    "classification": {"kind": "complaint", "category": "产品质量", "severity": "严重",
                       "department": "质量部", "collaborators": ["生产部", "研发部"],
                       "priority": 1, "tags": ["vip", "batch"]},
    "duplicate_of": None, "duplicates": [57, 58], "reopen_count": 1, "satisfaction": 4,
    "clocks": [
        {"name": "respond", "target_s": 7200, "started_at": "2026-11-23T01:15:00.000Z",
         "due_at": "2026-11-23T03:15:00.000Z", "stopped_at": "2026-11-23T02:00:00.000Z",
         "status": "met"},
        {"name": "8d_report", "target_s": 259200, "started_at": "2026-11-23T02:00:00.000Z",
         "due_at": "2026-11-26T02:00:00.000Z", "stopped_at": None, "status": "breached"},
    ],
    "events": [
        {"seq": 1, "type": "received", "at": "2026-11-23T01:15:00.123Z", "actor": "hotline",
         "note": None, "data": {}},
        {"seq": 2, "type": "assigned", "at": "2026-11-23T02:00:00.000Z", "actor": "王芳",
         "note": "这是一条非常长的备注，" * 8, "data": {"department": "质量部"}},
    ],
}
BREACHES = {"breaches": [
    {"id": 7, "subject": "批次问题", "clock": "8d_report", "status": "breached",
     "due_at": "2026-11-26T02:00:00.000Z", "overdue_s": 93784, "department": "质量部"},
    {"id": 9, "subject": "Slow reply", "clock": "respond", "status": "warning",
     "due_at": "2026-11-27T02:00:00.000Z", "overdue_s": -600, "department": "客服部"},
]}
REPORT = {"period": {"from": "2026-11-01", "to": "2026-12-01"},
          "totals": {"cases": 12, "breached": 2, "satisfaction_avg": 4.25},
          "by_category": [{"category": "产品质量", "cases": 8, "breached": 2},
                          {"category": "服务态度", "cases": 4, "breached": 0}]}
CSV = "\ufeffcategory,cases\r\n产品质量,8\r\n服务态度,4\r\n".encode()
HTML = "<!doctype html><html><body><h1>VOC 报告</h1></body></html>\n".encode()


class StandIn(http.server.BaseHTTPRequestHandler):
    """Answers the way docs/api.md says vocd does, for what vocd cannot show yet."""
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json", headers=()):
        data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, val in headers:
            self.send_header(k, val)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        StandIn.seen.append((self.command, url.path, query, self.headers.get("Authorization")))
        if url.path == "/api/v1/cases/7":
            self.reply(200, RICH_CASE)
        elif url.path == "/api/v1/breaches":
            # Two pages, as vocd pages a long list: vocctl must follow next_cursor.
            if query.get("cursor") is None:
                self.reply(200, {"breaches": BREACHES["breaches"][:1], "next_cursor": "1a-7-0"})
            elif query.get("cursor") == "1a-7-0":
                self.reply(200, {"breaches": BREACHES["breaches"][1:], "next_cursor": None})
            else:
                self.reply(400, {"error": {"code": "bad_request", "message": "bad cursor"}})
        elif url.path == "/api/v1/reports":
            fmt = query.get("format", "json")
            if fmt == "csv":
                self.reply(200, CSV, "text/csv; charset=utf-8")
            elif fmt == "html":
                self.reply(200, HTML, "text/html; charset=utf-8")
            else:
                self.reply(200, REPORT)
        elif url.path == "/api/v1/status":
            self.reply(503, {"error": {"code": "unavailable", "message": "writer backed up"}},
                       headers=[("Retry-After", "7")])
        elif url.path == "/api/v1/cases":
            self.reply(502, b"<html>Bad Gateway</html>\n", "text/html")
        else:
            self.reply(404, {"error": {"code": "not_found", "message": "no such endpoint"}})

    stall = threading.Event()  # set: the backup stops after 1000 bytes until released
    release = threading.Event()

    def do_POST(self):
        StandIn.seen.append((self.command, self.path, {}, self.headers.get("Authorization")))
        if self.path == "/api/v1/admin/backup":
            # Promise 100000 bytes, send 1000, hang up (or stall): a backup cut off in the
            # middle.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\0" * 1000)
            self.wfile.flush()
            if StandIn.stall.is_set():
                StandIn.release.wait(30)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.reply(404, {"error": {"code": "not_found", "message": "no such endpoint"}})


class TestAnswersVocdCannotGiveYet(CtlCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.url = "http://127.0.0.1:%d" % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def test_show_clocks_and_details(self):
        out = self.ok(self, "show", "7", token="t0k", tz="Asia/Shanghai").out
        self.assertEqual(StandIn.seen[-1][3], "Bearer t0k")
        self.assertRegex(out, r"(?m)^duplicates\s+57, 58$")
        self.assertRegex(out, r"(?m)^reopened\s+1 time$")
        self.assertRegex(out, r"(?m)^satisfaction\s+4 of 5$")
        self.assertRegex(out, r"(?m)^  collaborators\s+生产部, 研发部$")
        self.assertRegex(out, r"(?m)^  tags\s+vip, batch$")
        clocks = self.table(out[out.index("\nClocks:\n") + 9:out.index("\nEvents:")])
        self.assertEqual(clocks[0].split(), ["CLOCK", "STATUS", "TARGET", "STARTED", "DUE",
                                             "STOPPED"])
        self.assertEqual(clocks[1].split(), ["respond", "met", "2h", "2026-11-23", "09:15",
                                             "2026-11-23", "11:15", "2026-11-23", "10:00"])
        self.assertEqual(clocks[2].split(), ["8d_report", "breached", "3d", "2026-11-23",
                                             "10:00", "2026-11-26", "10:00", "-"])
        self.assertAligned(clocks, "DUE")
        events = self.table(out[out.index("\nEvents:\n") + 9:])
        note = events[2][events[2].index("这是"):]
        self.assertIn("…", note)
        self.assertLessEqual(width(note.split("  ")[0]), 40)
        self.assertAligned(events, "DATA")

    def test_breaches(self):
        out = self.ok(self, "breaches", tz="Asia/Shanghai").out
        lines = self.table(out)
        self.assertEqual(lines[0].split(), ["id", "subject", "clock", "status", "due_at",
                                            "overdue_s", "department"])
        self.assertEqual(lines[1].split(), ["7", "批次问题", "8d_report", "breached", "2026-11-26",
                                            "10:00", "1d", "2h", "质量部"])
        self.assertIn("-10m", lines[2])
        self.assertAligned(lines, "department")
        self.assertEqual(len(lines), 3)  # both pages, and no next_cursor line
        self.assertEqual(json.loads(self.ok(self, "breaches", "--json").out),
                         dict(BREACHES, next_cursor=None))
        self.assertEqual([q.get("cursor") for _, p, q, _ in StandIn.seen[-2:]], [None, "1a-7-0"])

    def test_report_formats(self):
        StandIn.seen.clear()
        cp = self.ok(self, "report", "--from", "2026-11-01", "--to", "2026-12-01",
                     "--format", "csv")
        self.assertEqual(cp.stdout, CSV)  # byte for byte: BOM and CRLF stay
        self.assertEqual(StandIn.seen[-1][2],
                         {"from": "2026-11-01", "to": "2026-12-01", "format": "csv"})
        self.assertEqual(self.ok(self, "report", "--format", "html").stdout, HTML)
        self.assertEqual(json.loads(self.ok(self, "report", "--format", "json").out), REPORT)
        self.assertEqual(json.loads(self.ok(self, "report", "--json").out), REPORT)
        self.assertEqual(StandIn.seen[-1][2], {})
        out = self.ok(self, "report").out
        self.assertRegex(out, r"(?m)^period:\n  from\s+2026-11-01\n  to\s+2026-12-01$")
        self.assertRegex(out, r"(?m)^  satisfaction_avg\s+4\.25$")
        self.assertRegex(out, r"(?m)^by_category:\n  category\s+cases\s+breached\n"
                              r"  产品质量\s+8\s+2\n  服务态度\s+4\s+0$")

    def test_errors_from_the_server(self):
        self.fails(self, "status",
                   err=r"^vocctl: unavailable: writer backed up \(retry after 7 s\)\n$")
        # Not vocd's error format: status and the start of the body.
        self.fails(self, "cases", err=r"^vocctl: HTTP 502: <html>Bad Gateway</html>\n$")
        self.fails(self, "reload", err=r"^vocctl: not_found: no such endpoint\n$")

    def test_backup_cut_off_leaves_nothing(self):
        d = tempfile.mkdtemp(prefix="vocctl-it-")
        try:
            target = os.path.join(d, "b.mdb")
            self.fails(self, "backup", target, err=r"^vocctl: request to .* failed: ")
            self.assertEqual(os.listdir(d), [])
            # An older backup under that name is left alone.
            with open(target, "wb") as f:
                f.write(b"old backup")
            self.fails(self, "backup", target)
            self.assertEqual(os.listdir(d), ["b.mdb"])
            with open(target, "rb") as f:
                self.assertEqual(f.read(), b"old backup")
        finally:
            shutil.rmtree(d)

    def test_backup_interrupted_removes_tmp(self):
        d = tempfile.mkdtemp(prefix="vocctl-it-")
        StandIn.stall.set()
        StandIn.release.clear()
        try:
            target = os.path.join(d, "b.mdb")
            env = dict(os.environ, VOCD_URL=self.url, VOCD_TOKEN="t")
            p = subprocess.Popen([VOCCTL, "backup", target], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 30
                while not (os.path.exists(target + ".tmp")
                           and os.path.getsize(target + ".tmp") == 1000):
                    self.assertLess(time.monotonic(), deadline, "no FILE.tmp with 1000 bytes")
                    self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
                    time.sleep(0.01)
                p.send_signal(signal.SIGINT)
                _, err = p.communicate(timeout=30)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, -signal.SIGINT, err)
            self.assertIsNone(sanitizer_report(err.decode("utf-8", "replace")))
            self.assertEqual(os.listdir(d), [])
        finally:
            StandIn.stall.clear()
            StandIn.release.set()
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main(verbosity=2)

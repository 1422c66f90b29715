"""Black-box tests of the offline profile commands (CONTRACT.md "vocctl commands",
docs/vocctl.md "rules"): `vocctl rules test PROFILE.lua CASE.json` and
`vocctl rules replay PROFILE.lua --data-dir DIR`, run as $VOCCTL_BIN.

The replay runs against the data dir of a RUNNING vocd ($VOCD_BIN through vocd_harness.Vocd)
whose cases were created with fixture profile A; profile B classifies some of them
differently and has tighter clocks. The store file and the daemon's answers must be the same
before and after. Fixtures: tests/fixtures/rules/ (profiles/, lib/ for require, case files)."""

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocctl_bin, sanitizer_report  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VOCCTL = vocctl_bin()
FIXTURES = os.path.join(SOURCE_DIR, "tests", "fixtures", "rules")
PROFILE_A = os.path.join(FIXTURES, "profiles", "profile_a.lua")
PROFILE_B = os.path.join(FIXTURES, "profiles", "profile_b.lua")
BROKEN = os.path.join(FIXTURES, "profiles", "broken_syntax.lua")
CLASSIFY_ERROR = os.path.join(FIXTURES, "profiles", "classify_error.lua")
CASE_ZH_HANT = os.path.join(FIXTURES, "case_zh_hant.json")

CALENDARS = {
    "workdays": {
        "time_zone": "Asia/Shanghai",
        "hours": {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
    }
}

CONFIG_YAML = """\
calendars:
  workdays:
    time_zone: Asia/Shanghai
    hours: { mon: "09:00-18:00", tue: "09:00-18:00", wed: "09:00-18:00",
             thu: "09:00-18:00", fri: "09:00-18:00" }
"""


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class RulesCase(unittest.TestCase):
    def setUp(self):
        # A cwd without etc/vocd.yaml: the default config must not leak into the tests.
        self.tmp = tempfile.mkdtemp(prefix="vocctl-rules-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def ctl(self, *args, cwd=None, timeout=300):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOCD_")}
        env["TZ"] = "UTC"
        env["LC_ALL"] = "C.UTF-8"
        cp = subprocess.run([VOCCTL] + list(args), capture_output=True, env=env,
                            timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd or self.tmp)
        if cp.returncode < 0:
            self.fail("vocctl %s died by signal %d: %s" % (args, -cp.returncode, cp.stderr))
        cp.out = cp.stdout.decode("utf-8")
        cp.err = cp.stderr.decode("utf-8")
        report = sanitizer_report(cp.err)
        if report:
            self.fail("sanitizer report from vocctl %s:\n%s" % (" ".join(args), report))
        return cp

    def run_ok(self, *args, **kw):
        cp = self.ctl(*args, **kw)
        self.assertEqual(cp.returncode, 0, "vocctl %s:\nout %s\nerr %s"
                         % (" ".join(args), cp.out, cp.err))
        return cp

    def run_fails(self, *args, code=1, err=None, **kw):
        cp = self.ctl(*args, **kw)
        self.assertEqual(cp.returncode, code, "vocctl %s: out %r err %r"
                         % (" ".join(args), cp.out, cp.err))
        if err:
            self.assertRegex(cp.err, err)
        return cp

    def write(self, name, content):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content if isinstance(content, str)
                    else json.dumps(content, ensure_ascii=False))
        return path

    def config(self):
        return self.write("vocd.yaml", "data_dir: %s\n%s" % (os.path.join(self.tmp, "data"),
                                                           CONFIG_YAML))


# ---------------------------------------------------------------------------------------------
class TestRulesTest(RulesCase):
    def test_traditional_chinese_case_finds_its_category(self):
        cp = self.run_ok("rules", "test", PROFILE_A, CASE_ZH_HANT, "-c", self.config())
        self.assertRegex(cp.out, r"(?m)^profile +fixture-a \(")
        self.assertRegex(cp.out, r"(?m)^subject +電飯煲質量問題$")
        self.assertRegex(cp.out, r"(?m)^  kind +complaint$")
        self.assertRegex(cp.out, r"(?m)^  category +产品质量$")
        self.assertRegex(cp.out, r"(?m)^  department +质量部$")
        self.assertRegex(cp.out, r"(?m)^  priority +2$")
        self.assertIn("Expect: ok", cp.out)
        # received_at 2026-11-20T17:00+08:00 = 09:00 UTC, a Friday.
        self.assertIn("Clocks (due if started at 2026-11-20 09:00 +0000):", cp.out)
        rows = {line.split()[0]: line for line in cp.out.splitlines()
                if line.startswith("  ") and line.split()[0] in ("respond", "resolve", "plan")}
        self.assertEqual(set(rows), {"respond", "resolve", "plan"})
        # respond started at intake (received), 30 days, warns at 80 % = day 24
        self.assertRegex(rows["respond"], r"received → acknowledged +30d +24x7 +80% +running "
                                          r"+2026-12-20 09:00 +2026-12-14 09:00")
        # plan: 4 working hours from Friday 17:00 Shanghai = 1 h Friday + 3 h Monday
        # -> Monday 12:00 Shanghai = 04:00 UTC; not started at intake
        self.assertRegex(rows["plan"], r"assigned → planned +4h +workdays +- +- "
                                       r"+2026-11-23 04:00")
        self.assertEqual(cp.err, "")

    def test_json_and_intake_record_form(self):
        record = {"subject": "冰箱漏水", "text": "买了一周就漏水了", "channel": "web",
                  "received_at": "2026-11-16T08:00:00Z"}
        path = self.write("intake.json", record)
        cp = self.run_ok("rules", "test", PROFILE_B, path, "-c", self.config(), "--json")
        doc = json.loads(cp.out)
        self.assertEqual(doc["profile"]["name"], "fixture-b")
        c = doc["classification"]
        self.assertEqual((c["kind"], c["category"], c["severity"], c["priority"]),
                         ("complaint", "产品质量", "严重", 1))
        self.assertEqual(doc["errors"], [])
        self.assertNotIn("expect", doc)
        clocks = {k["name"]: k for k in doc["clocks"]}
        self.assertEqual(clocks["respond"]["at_intake"], "running")
        self.assertEqual(clocks["respond"]["due_at"], "2026-11-16T09:00:00.000Z")
        self.assertEqual(clocks["respond"]["warn_at"], "2026-11-16T08:30:00.000Z")
        # resolve's target function sees the new classification: serious -> 1 h
        self.assertEqual(clocks["resolve"]["target_s"], 3600)
        self.assertIsNone(clocks["resolve"]["at_intake"])
        self.assertEqual(clocks["plan"]["calendar"], "workdays")
        self.assertTrue(clocks["plan"]["calendar_known"])
        # --at moves the intake (and every due time) and wins over received_at
        cp = self.run_ok("rules", "test", PROFILE_B, path, "-c", self.config(), "--json",
                         "--at", "2026-11-17T10:00:00Z")
        doc = json.loads(cp.out)
        self.assertEqual(doc["started_at"], "2026-11-17T10:00:00.000Z")
        self.assertEqual({k["name"]: k for k in doc["clocks"]}["respond"]["due_at"],
                         "2026-11-17T11:00:00.000Z")

    def test_case_view_and_list_forms(self):
        view = {"id": 42, "state": "assigned", "created_at": "2026-11-16T08:00:00Z",
                "subject": "服务态度差", "text": "客服态度很差，没人理", "channel": "hotline",
                "classification": {"kind": "opinion"}, "events": [], "clocks": []}
        items = [
            {"case": {"subject": "谢谢", "text": "表扬你们的师傅"}, "expect": {"kind": "praise"}},
            view,
        ]
        path = self.write("list.json", items)
        cp = self.run_ok("rules", "test", PROFILE_A, path, "--json")
        docs = json.loads(cp.out)
        self.assertEqual([d["classification"]["kind"] for d in docs], ["praise", "complaint"])
        self.assertEqual(docs[1]["classification"]["category"], "服务态度")
        self.assertTrue(docs[0]["expect"]["ok"])
        cp = self.run_ok("rules", "test", PROFILE_A, path)
        self.assertIn("Case 1 of 2", cp.out)
        self.assertIn("Case 2 of 2", cp.out)
        # Without a config the workdays clock counts 24x7, and says so.
        self.assertRegex(cp.err, r"warning: no config .*clock 'plan' counts its calendar "
                                 r"'workdays' as 24x7")
        self.assertIn("workdays (as 24x7)", cp.out)

    def test_broken_profile_error_with_file_and_line(self):
        cp = self.run_fails("rules", "test", BROKEN, CASE_ZH_HANT, code=1)
        self.assertRegex(cp.err, r"(?m)^%s:7: .*near ','" % re.escape(BROKEN))
        self.assertIn("did not load", cp.err)
        self.assertEqual(cp.out, "")

    def test_rule_error_in_classify(self):
        path = self.write("noproduct.json", {"subject": "坏了", "text": "不能用了"})
        cp = self.run_fails("rules", "test", CLASSIFY_ERROR, path, code=1)
        # the line of string.upper(model) in classify, and the default classification
        self.assertRegex(cp.err, r"(?m)^%s:6: .*upper" % re.escape(CLASSIFY_ERROR))
        self.assertRegex(cp.out, r"(?m)^  tags +rule_error$")
        self.assertRegex(cp.out, r"(?m)^  kind +opinion$")
        self.assertRegex(cp.err, r"vocctl: 1 rule error")
        # --json has the same errors
        cp = self.run_fails("rules", "test", CLASSIFY_ERROR, path, "--json", code=1)
        doc = json.loads(cp.out)
        self.assertEqual(len(doc["errors"]), 1)
        self.assertRegex(doc["errors"][0], r"classify_error\.lua:6: ")

    def test_failed_expectation_and_invalid_files(self):
        wrong = self.write("wrong.json", {"case": {"text": "漏水"},
                                          "expect": {"category": "服务态度", "priority": 2}})
        cp = self.run_fails("rules", "test", PROFILE_A, wrong, code=1,
                            err=r"did not match the expectations")
        self.assertIn("Expect: FAILED", cp.out)
        self.assertIn('category: expected "服务态度", got "产品质量"', cp.out)
        self.assertNotIn("priority:", cp.out)  # that one matched
        # expected clock targets (seconds), as the shipped profiles' case sets have them
        targets = self.write("targets.json", {"case": {"text": "漏水"}, "expect": {},
                                              "clocks": {"respond": 2592000, "plan": 3600}})
        cp = self.run_fails("rules", "test", PROFILE_A, targets, code=1)
        self.assertIn("clocks.plan: expected 3600, got 14400", cp.out)
        self.assertNotIn("clocks.respond", cp.out)
        # validated like the API: neither subject nor text; a number as text
        self.run_fails("rules", "test", PROFILE_A, self.write("notext.json", {"channel": "web"}),
                       code=1, err=r"notext\.json: 'text' or 'subject' is required")
        self.run_fails("rules", "test", PROFILE_A, self.write("num.json", {"text": 5}),
                       code=1, err=r"num\.json: .*text")
        self.run_fails("rules", "test", PROFILE_A,
                       self.write("list.json", [{"text": "ok"}, {"text": "x", "colour": 1}]),
                       code=1, err=r"list\.json: case 2: unknown field 'colour'")
        self.run_fails("rules", "test", PROFILE_A, self.write("bad.json", "{\"text\": "),
                       code=1, err=r"bad\.json:1:\d+: ")
        self.run_fails("rules", "test", PROFILE_A,
                       self.write("expect.json", {"case": {"text": "x"}, "expect": {"colour": 1}}),
                       code=1, err=r"unknown field 'colour'")
        self.run_fails("rules", "test", PROFILE_A, os.path.join(self.tmp, "missing.json"),
                       code=1, err=r"missing\.json")

    def test_shipped_profiles_and_their_case_sets(self):
        """Every case set of tests/profiles/<name>/ passes `rules test` with its shipped
        profile and the shipped config's calendars (what profile_runner checks in C)."""
        root = os.path.join(SOURCE_DIR, "tests", "profiles")
        config = os.path.join(SOURCE_DIR, "etc", "vocd.yaml")
        sets = sorted(d for d in (os.listdir(root) if os.path.isdir(root) else [])
                      if os.path.isfile(os.path.join(SOURCE_DIR, "scripts", "profiles",
                                                     d + ".lua")))
        if not sets:
            self.skipTest("no shipped profiles with case sets")
        for name in sets:
            profile = os.path.join(SOURCE_DIR, "scripts", "profiles", name + ".lua")
            files = sorted(f for f in os.listdir(os.path.join(root, name)) if f.endswith(".json"))
            for f in files:
                with self.subTest(profile=name, case=f):
                    cp = self.run_ok("rules", "test", "-c", config, profile,
                                     os.path.join(root, name, f), "--json")
                    doc = json.loads(cp.out)
                    self.assertTrue(doc["expect"]["ok"], doc["expect"])
                    self.assertEqual(doc["errors"], [])

    def test_usage(self):
        self.run_fails("rules", code=1, err=r"wants 'test' or 'replay'")
        self.run_fails("rules", "frob", code=1, err=r"unknown subcommand 'frob'")
        self.run_fails("rules", "test", PROFILE_A, code=1,
                       err=r"vocctl rules test: wants PROFILE.lua and CASE.json")
        self.run_fails("rules", "test", PROFILE_A, CASE_ZH_HANT, "--at", "soon", code=1,
                       err=r"--at")
        self.run_fails("rules", "replay", PROFILE_A, code=1, err=r"--data-dir DIR is required")
        self.run_fails("rules", "replay", PROFILE_A, "--data-dir", self.tmp, "--limit", "0",
                       code=1, err=r"--limit")
        self.assertTrue(self.run_ok("rules", "test", "--help").out.startswith(
            "usage: vocctl rules test"))
        self.assertTrue(self.run_ok("help", "rules").out.startswith("usage: vocctl rules"))
        self.run_fails("rules", "replay", PROFILE_A, "--data-dir",
                       os.path.join(self.tmp, "nothing"), code=1, err=r"nothing")


# ---------------------------------------------------------------------------------------------
class TestRulesReplay(RulesCase):
    """One running vocd with profile A and four cases, replayed with B (and A)."""

    @classmethod
    def setUpClass(cls):
        cls.v = Vocd(config_extra={"profile": PROFILE_A, "calendars": CALENDARS,
                                   # small, so that the concurrent test makes vocd grow it
                                   "store": {"map_size": "1MiB"}})
        try:
            v = cls.v
            cls.leak = v.create_case(subject="冰箱漏水", text="买了一周就漏水了", channel="web")
            cls.rude = v.create_case(subject="客服态度很差", text="打了三次电话都没人理",
                                     channel="hotline")
            cls.question = v.create_case(subject="请问保修期多久", text="发票丢了还能保修吗",
                                         channel="web")
            cls.thanks = v.create_case(subject="谢谢师傅", text="表扬上门的师傅", channel="web")
            for case_id, event in ((cls.leak, {"type": "acknowledged"}),
                                   (cls.leak, {"type": "assigned",
                                               "data": {"department": "质量部"}}),
                                   (cls.thanks, {"type": "acknowledged"})):
                status, _, body = v.request("POST", "/api/v1/cases/%d/events" % case_id, event)
                assert status == 201, (status, body)
            # Judge open clocks two hours from now: B's 1 h clocks have run out, A's 30 d not.
            cls.at = rfc3339(datetime.datetime.now(datetime.timezone.utc)
                             + datetime.timedelta(hours=2))
        except BaseException:
            cls.v.close(failed=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def data_file(self):
        return os.path.join(self.v.data_dir, "data.mdb")

    def snapshot(self):
        """The store file and the daemon's view of every case."""
        path = self.data_file()
        st = os.stat(path)
        answers = {}
        for case_id in (self.leak, self.rude, self.question, self.thanks):
            status, _, body = self.v.request("GET", "/api/v1/cases/%d" % case_id)
            self.assertEqual(status, 200)
            answers[case_id] = body
        return sha256_file(path), st.st_mtime_ns, st.st_size, answers

    def replay(self, profile, *extra):
        return self.run_ok("rules", "replay", profile, "--data-dir", self.v.data_dir, "--at",
                           self.at, *extra)

    def test_replay_b_shows_changes_and_leaves_store_alone(self):
        before = self.snapshot()
        cp = self.replay(PROFILE_B)
        self.v.assert_alive()
        after = self.snapshot()
        self.assertEqual(before[:3], after[:3], "the store file changed")
        self.assertEqual(before[3], after[3], "the daemon's answers changed")

        out = cp.out
        blocks = {}
        for block in re.split(r"\n(?=case \d+  )", out.split("\nSummary:")[0]):
            m = re.match(r"case (\d+)  \[(\w+)\]  (.*)\n", block)
            self.assertIsNotNone(m, "unexpected output: %r" % block)
            blocks[int(m.group(1))] = block
        # newest first; the praise case changed nothing and is not listed
        self.assertEqual(list(blocks), [self.question, self.rude, self.leak], out)
        leak = blocks[self.leak]
        self.assertRegex(leak, r"case %d  \[assigned\]  冰箱漏水\n" % self.leak)
        self.assertRegex(leak, r"(?m)^  severity +normal → 严重$")
        self.assertRegex(leak, r"(?m)^  priority +2 → 1$")
        self.assertRegex(leak, r"(?m)^  clock resolve#1 +running → breached  \(due ")
        self.assertNotIn("respond", leak)  # acknowledged in time under both
        self.assertNotIn("category", leak)
        rude = blocks[self.rude]
        self.assertRegex(rude, r"(?m)^  category +服务态度 → 服务质量$")
        self.assertRegex(rude, r"(?m)^  clock respond#1 +running → breached  \(due ")
        question = blocks[self.question]
        self.assertRegex(question, r"(?m)^  clock respond#1 +running → breached")
        self.assertNotRegex(question, r"(?m)^  (kind|category|severity|priority) ")

        summary = out.split("\nSummary:")[1]
        self.assertRegex(summary, r"^ profile fixture-b over %s" % re.escape(self.v.data_dir))
        self.assertRegex(summary, r"(?m)^  cases scanned +4$")
        self.assertRegex(summary, r"(?m)^  cases changed +3$")
        self.assertRegex(summary, r"(?m)^  rule errors +0$")
        self.assertRegex(summary, r"(?m)^  category +1$")
        self.assertRegex(summary, r"(?m)^  severity +1$")
        self.assertRegex(summary, r"(?m)^  priority +1$")
        self.assertRegex(summary, r"(?m)^  respond +running +breached +2$")
        self.assertRegex(summary, r"(?m)^  resolve +running +breached +1$")
        self.assertNotRegex(summary, r"(?m)^  plan ")

    def test_replay_json(self):
        cp = self.replay(PROFILE_B, "--json")
        doc = json.loads(cp.out)
        self.assertEqual(doc["profile"]["name"], "fixture-b")
        self.assertEqual(doc["data_dir"], self.v.data_dir)
        s = doc["summary"]
        self.assertEqual((s["scanned"], s["changed"], s["rule_errors"]), (4, 3, 0))
        self.assertEqual(s["classification"], {"category": 1, "severity": 1, "priority": 1})
        moves = {(m["clock"], m["old"], m["new"]): m["cases"] for m in s["clocks"]}
        self.assertEqual(moves, {("respond", "running", "breached"): 2,
                                 ("resolve", "running", "breached"): 1})
        changes = {c["id"]: c for c in doc["changes"]}
        self.assertEqual(set(changes), {self.leak, self.rude, self.question})
        leak = changes[self.leak]
        self.assertIn({"field": "severity", "old": "normal", "new": "严重"},
                      leak["classification"])
        resolve = [c for c in leak["clocks"] if c["clock"] == "resolve"][0]
        self.assertEqual((resolve["cycle"], resolve["old"], resolve["new"]),
                         (1, "running", "breached"))
        # B's resolve for a serious case: 1 hour after the assignment
        status, _, case = self.v.request("GET", "/api/v1/cases/%d" % self.leak)
        assigned = [e for e in case["events"] if e["type"] == "assigned"][0]
        at = datetime.datetime.strptime(assigned["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        due = datetime.datetime.strptime(resolve["new_due_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertLess(abs((due - at).total_seconds() - 3600), 0.01)
        old_due = [k for k in case["clocks"] if k["name"] == "resolve"][0]["due_at"]
        self.assertEqual(resolve["old_due_at"], old_due)

    def test_replay_same_profile_changes_nothing(self):
        cp = self.replay(PROFILE_A)
        self.assertNotRegex(cp.out, r"(?m)^case \d+")
        self.assertRegex(cp.out, r"(?m)^  cases scanned +4$")
        self.assertRegex(cp.out, r"(?m)^  cases changed +0$")
        # ... and judged at a time when A's clocks have run out, stored and replayed agree
        cp = self.run_ok("rules", "replay", PROFILE_A, "--data-dir", self.v.data_dir, "--at",
                         "2099-01-01", "--json")
        self.assertEqual(json.loads(cp.out)["summary"]["changed"], 0)

    def test_limit_config_and_rule_errors(self):
        # --limit: the newest cases only; -c gives calendars and (without --data-dir) data_dir
        cp = self.run_ok("rules", "replay", PROFILE_B, "-c", self.v.config_path, "--limit", "2",
                         "--at", self.at, "--json")
        doc = json.loads(cp.out)
        self.assertEqual(doc["summary"]["scanned"], 2)
        self.assertEqual({c["id"] for c in doc["changes"]}, {self.question})
        # A classify that fails on every case: reported with file:line, exit 0
        cp = self.replay(CLASSIFY_ERROR)
        self.assertRegex(cp.out, r"(?m)^  rule error +%s:6: " % re.escape(CLASSIFY_ERROR))
        self.assertRegex(cp.out, r"(?m)^  rule errors +\d+ \(in 4 cases\)$")
        self.assertRegex(cp.out, r"(?m)^  tags +- → rule_error$")


# ---------------------------------------------------------------------------------------------
class TestReplayBesideWrites(RulesCase):
    def test_replay_while_the_daemon_writes(self):
        """Cases arrive (and the 1 MiB map grows) while replays run: every replay completes
        and sees a consistent store; the daemon keeps writing."""
        with Vocd(config_extra={"profile": PROFILE_A, "calendars": CALENDARS,
                                "store": {"map_size": "1MiB"}}) as v:
            first = v.create_case(subject="冰箱漏水", text="漏水", channel="web")
            created = []
            errors = []

            def writer():
                # Enough cases (with long texts) to grow the 1 MiB map at least once.
                for n in range(300):
                    try:
                        created.append(v.create_case(subject="并发 %d" % n,
                                                     text="漏水" + "很严重" * 300,
                                                     channel="load", external_id="c%d" % n))
                    except Exception as e:  # noqa: BLE001 - reported below
                        errors.append(e)
                        return

            t = threading.Thread(target=writer)
            t.start()
            scanned = []
            try:
                while t.is_alive() or len(scanned) < 3:
                    cp = self.run_ok("rules", "replay", PROFILE_B, "--data-dir", v.data_dir,
                                     "--json")
                    doc = json.loads(cp.out)
                    scanned.append(doc["summary"]["scanned"])
                    # every case seen has its intake classification compared
                    for change in doc["changes"]:
                        self.assertIn({"field": "severity", "old": "normal", "new": "严重"},
                                      change["classification"])
            finally:
                t.join()
            self.assertEqual(errors, [])
            v.assert_alive()
            self.assertGreaterEqual(min(scanned), 1)
            self.assertEqual(len(created), 300)
            # replays ran while the store grew under them
            self.assertLess(min(scanned), 301, scanned)
            cp = self.run_ok("rules", "replay", PROFILE_B, "--data-dir", v.data_dir, "--json")
            doc = json.loads(cp.out)
            self.assertEqual(doc["summary"]["scanned"], 1 + len(created))
            self.assertEqual(doc["summary"]["classification"]["severity"], 1 + len(created))
            # the daemon still writes after all these readers, and its store grew
            v.create_case(subject="之后", text="还能写入", channel="web")
            status, _, case = v.request("GET", "/api/v1/cases/%d" % first)
            self.assertEqual(status, 200)
            self.assertGreater(os.path.getsize(os.path.join(v.data_dir, "data.mdb")), 1 << 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)

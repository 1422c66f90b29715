"""Misbehaving Lua rules in a running vocd: the daemon keeps serving.

vocd runs a copy of tests/unit/fixtures/rules/misbehave.lua, whose classify does whatever the
case's `fields.mode` says: loop forever, allocate gigabytes, error(), return the wrong types,
reach for os / io / bytecode / require("io"), play metatable tricks on _ENV. For each mode the
case is still created (201) with the default classification and a `rule_error` tag, the log
has a WARN line with the profile's file:line, the matching /metrics counter goes up, /healthz
stays 200 and the next, well-behaved case is classified normally. Guards that fail answer 409
with a message; an on_event that loops leaves its event in place and tags the case.

Profile reload (SIGHUP and POST /api/v1/admin/reload): a good new profile changes how new
cases are classified; a profile with a syntax error, or whose own `tests` fail, is refused with
file:line in the reply (and, for SIGHUP, in the log) and the old profile stays.
"""

import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd  # noqa: E402

SOURCE = os.environ.get("VOC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MISBEHAVE = os.path.join(SOURCE, "tests", "unit", "fixtures", "rules", "misbehave.lua")

# Small budgets keep the runaway modes quick; they are what the config offers.
RULES = {"max_instructions": 5000000, "max_memory": "16MiB"}

# mode -> the /metrics reason it counts as (None: whichever of the three limits comes first)
BAD_MODES = {
    "loop": "instructions",
    "pcall_loop": "instructions",
    "xpcall_loop": "instructions",
    "recursion": None,
    "membomb": "memory",
    "grow": "memory",
    "pcall_membomb": "memory",
    "error": "error",
    "error_table": "error",
    "error_nolevel": "error",
    "wrong_type": "error",
    "wrong_priority": "error",
    "wrong_kind": "error",
    "wrong_tags": "error",
    "unknown_field": "error",
    "index_nil": "error",
    "os": "error",
    "io": "error",
    "dump": "error",
    "binary": "error",
    "binary_text_mode": "error",
    "require_io": "error",
    "require_escape": "error",
    "coroutine": "error",
    "gc": "error",
}

# Tricks that do not fail but find nothing to reach.
ESCAPES = {
    "env_meta": "nil,nil,nil,nil,nil,nil,nil,nil",
    "rawget_G": "nil,nil,nil,true",
    "load_env": "nil,nil",
}

METRIC_RE = re.compile(r'^vocd_rule_errors_total\{reason="(\w+)"\} (\S+)$', re.M)


def rule_errors(v):
    st, _, body = v.request("GET", "/metrics", token=None)
    assert st == 200, st
    text = body.decode() if isinstance(body, bytes) else body
    return {reason: float(value) for reason, value in METRIC_RE.findall(text)}


def start_with_profile(source_text=None, source_file=None, extra=None):
    """vocd with a profile copied into its own temp dir (so a test can rewrite it)."""
    v = Vocd(start=False)
    path = os.path.join(v.dir, "profile.lua")
    if source_file:
        shutil.copyfile(source_file, path)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(source_text)
    cfg = {"profile": path, "rules": RULES}
    cfg.update(extra or {})
    v.config_extra = cfg
    v.write_config(cfg)
    v.start()
    return v, path


class RulesDaemonCase(unittest.TestCase):
    def get_case(self, v, cid):
        st, _, body = v.request("GET", "/api/v1/cases/%d" % cid)
        self.assertEqual(st, 200, body)
        return body

    def classified(self, case):
        events = [e for e in case["events"] if e["type"] == "classified"]
        self.assertEqual(len(events), 1, case["events"])
        return events[0]["data"]

    def create(self, v, mode=None, subject="规则测试"):
        record = {"channel": "web", "subject": subject, "text": "电饭煲不加热"}
        if mode:
            record["fields"] = {"mode": mode}
        st, _, body = v.request("POST", "/api/v1/cases", record)
        self.assertEqual(st, 201, "mode %s: %r" % (mode, body))
        return body["id"]

    def assert_serving_normally(self, v, after):
        self.assertEqual(v.request("GET", "/healthz", token=None)[0], 200, after)
        cid = self.create(v, "ok")
        data = self.classified(self.get_case(v, cid))
        self.assertEqual((data["kind"], data["category"], data["tags"]),
                         ("inquiry", "咨询", ["ok"]), after)
        v.assert_alive()


class TestBadRules(RulesDaemonCase):
    def test_each_bad_rule_is_contained(self):
        v, path = start_with_profile(source_file=MISBEHAVE)
        with v:
            self.assert_serving_normally(v, "start")
            for mode, reason in BAD_MODES.items():
                before = rule_errors(v)
                mark = v.log_mark()
                cid = self.create(v, mode)
                case = self.get_case(v, cid)
                data = self.classified(case)
                # The defaults, tagged.
                self.assertEqual((data["kind"], data["category"], data["severity"],
                                  data["department"], data["priority"]),
                                 ("opinion", "other", "normal", "", 3), mode)
                self.assertIn("rule_error", data["tags"], mode)
                self.assertIn("rule_error", case["classification"]["tags"], mode)
                # Logged with the profile's file:line.
                m = v.wait_log(r'^WARN rules: classify failed case=%d error="(.*)"$' % cid,
                               since=mark)
                self.assertTrue(m.group(1).startswith(path + ":"), m.group(0))
                self.assertRegex(m.group(1), r"^%s:\d+: " % re.escape(path))
                # Counted.
                after = rule_errors(v)
                grown = {r: after.get(r, 0) - before.get(r, 0) for r in after}
                self.assertEqual(sum(grown.values()), 1, (mode, grown))
                if reason:
                    self.assertEqual(grown[reason], 1, (mode, grown))
                self.assert_serving_normally(v, mode)

            # setmetatable on _ENV and friends: classified, nothing reached.
            for mode, category in ESCAPES.items():
                cid = self.create(v, mode)
                data = self.classified(self.get_case(v, cid))
                self.assertEqual(data["category"], category, mode)
                self.assertNotIn("rule_error", data["tags"], mode)
            self.assertFalse(os.path.exists("/tmp/vocd-pwned"))

    def test_guards_and_looping_on_event(self):
        v, path = start_with_profile(source_file=MISBEHAVE)
        with v:
            cid = self.create(v, "ok")
            st, _, body = v.request("POST", "/api/v1/cases/%d/events" % cid,
                                    {"type": "assigned", "data": {"department": "质量部"}})
            self.assertEqual(st, 201, body)

            # on_event of `resolved` never ends: stopped, the event stays, the case is tagged.
            before = rule_errors(v)
            mark = v.log_mark()
            st, _, body = v.request("POST", "/api/v1/cases/%d/events" % cid,
                                    {"type": "resolved", "note": "已更换加热盘"})
            self.assertEqual(st, 201, body)
            case = self.get_case(v, cid)
            self.assertEqual(case["state"], "resolved")
            self.assertEqual([e["type"] for e in case["events"]][-1], "resolved")
            self.assertIn("rule_error", case["classification"]["tags"])
            v.wait_log(r'^WARN rules: on_event failed case=%d type=resolved error="%s:\d+: '
                       r'instruction limit exceeded"$' % (cid, re.escape(path)), since=mark)
            self.assertEqual(rule_errors(v)["instructions"] - before["instructions"], 1)

            # A guard that raises: 409 with the profile's message and line.
            mark = v.log_mark()
            st, _, body = v.request("POST", "/api/v1/cases/%d/events" % cid, {"type": "closed"})
            self.assertEqual(st, 409, body)
            self.assertEqual(body["error"]["code"], "conflict")
            self.assertRegex(body["error"]["message"],
                             r"^profile guard failed: %s:\d+: guard broke$" % re.escape(path))
            v.wait_log(r"^WARN rules: guard failed case=%d type=closed error=\"%s:\d+: guard "
                       r"broke\"$" % (cid, re.escape(path)), since=mark)
            # A guard that returns a string instead of true / false.
            st, _, body = v.request("POST", "/api/v1/cases/%d/events" % cid,
                                    {"type": "note", "note": "备注"})
            self.assertEqual(st, 409, body)
            self.assertIn("guard returned a string (it must return true, or false and a "
                          "reason)", body["error"]["message"])
            # A plain refusal without a reason still says something.
            other = self.create(v, "ok")
            st, _, body = v.request("POST", "/api/v1/cases/%d/events" % other,
                                    {"type": "rejected", "note": "重复反馈"})
            self.assertEqual(st, 409, body)
            self.assertEqual(body["error"]["message"], "refused by the profile's guard")
            # Nothing refused was written.
            self.assertEqual(self.get_case(v, cid)["state"], "resolved")
            self.assertEqual(self.get_case(v, other)["state"], "classified")
            self.assert_serving_normally(v, "guards")


PROFILE = """-- reload test profile, version {version}
return {{
  name = "reload-{version}",
  classify = function(case)
    return {{ kind = "complaint", category = "{category}" }}
  end,
  tests = {{
    {{ case = {{ subject = "任意" }}, expect = {{ category = "{expect}" }} }},
  }},
}}
"""

BROKEN = """-- reload test profile, broken
return {
  name = "broken",,
  classify = function(case) return {} end,
}
"""


class TestReload(RulesDaemonCase):
    def category_of_new_case(self, v):
        cid = self.create(v, subject="重载后")
        return self.classified(self.get_case(v, cid))["category"]

    def write(self, path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def test_reload_good_broken_and_failing_tests(self):
        v, path = start_with_profile(PROFILE.format(version=1, category="一号", expect="一号"))
        with v:
            self.assertEqual(self.category_of_new_case(v), "一号")

            # (a) A good profile, by SIGHUP and by the API: new cases follow it.
            self.write(path, PROFILE.format(version=2, category="二号", expect="二号"))
            mark = v.log_mark()
            v.sighup()
            v.wait_log(r"^INFO daemon: reloaded .*profile=reload-2$", since=mark)
            self.assertEqual(self.category_of_new_case(v), "二号")
            self.write(path, PROFILE.format(version=3, category="三号", expect="三号"))
            st, _, body = v.request("POST", "/api/v1/admin/reload")
            self.assertEqual(st, 200, body)
            self.assertEqual(body["profile"], "reload-3")
            self.assertEqual(self.category_of_new_case(v), "三号")

            # (b) A syntax error, (c) a profile whose own tests fail: refused with file:line,
            # the old profile stays.
            failing = PROFILE.format(version=4, category="四号", expect="别的")
            test_line = failing.splitlines().index(
                '    { case = { subject = "任意" }, expect = { category = "别的" } },') + 1
            bad = [(BROKEN, r"^%s:3: unexpected symbol near ','$" % re.escape(path)),
                   (failing, r'^%s:%d: tests\[1\]: category: expected "别的", got "四号"$'
                    % (re.escape(path), test_line))]
            for text, message in bad:
                self.write(path, text)
                mark = v.log_mark()
                st, _, body = v.request("POST", "/api/v1/admin/reload")
                self.assertEqual(st, 422, body)
                self.assertEqual(body["error"]["code"], "reload_failed")
                self.assertTrue(any(re.search(message, d) for d in body["error"]["details"]),
                                body)
                self.assertEqual(self.category_of_new_case(v), "三号")

                # Both ways of asking log who asked, the problem with file:line, the outcome.
                for how, ask in (("api=admin/reload token=admin", None), ("signal=SIGHUP", v.sighup)):
                    if ask:
                        mark = v.log_mark()
                        ask()
                    v.wait_log(r"^ERROR daemon: reload failed, the old configuration stays",
                               since=mark)
                    self.assertRegex(v.log()[mark:],
                                     r"(?m)^INFO daemon: reload requested %s$" % re.escape(how))
                    logged = [line[len("ERROR config: "):]
                              for line in v.log()[mark:].splitlines()
                              if line.startswith("ERROR config: ")]
                    self.assertTrue(any(re.search(message, line) for line in logged),
                                    v.log()[mark:])
                v.assert_alive()
                self.assertEqual(v.request("GET", "/healthz", token=None)[0], 200)
                self.assertEqual(self.category_of_new_case(v), "三号")

            # Fixed again: taken.
            self.write(path, PROFILE.format(version=5, category="五号", expect="五号"))
            st, _, body = v.request("POST", "/api/v1/admin/reload")
            self.assertEqual(st, 200, body)
            self.assertEqual(self.category_of_new_case(v), "五号")


if __name__ == "__main__":
    started = time.monotonic()
    try:
        unittest.main(verbosity=2)
    finally:
        sys.stderr.write("test_rules_daemon: %.1f s\n" % (time.monotonic() - started))

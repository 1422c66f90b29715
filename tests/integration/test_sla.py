"""SLA clocks end to end (CONTRACT.md "Lua profile" clocks, GET /api/v1/breaches, /metrics):
a profile with 1-4 second targets; breaches fire once, as clock_breached events, in the
breach list (most overdue first, with department and overdue_s), in the metrics, through
the on_clock hook and `vocctl breaches`; waiting/resumed moves the due time by the pause;
a deadline that falls due while vocd is stopped (SIGTERM or kill -9) fires once at start-up.
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocctl_bin  # noqa: E402

VOCCTL = vocctl_bin()

PROFILE = r'''
return {
  name = "sla-integration",
  classify = function(case)
    local serious = (case.subject or ""):find("严重") ~= nil
    return { kind = "complaint", category = "产品质量",
             severity = serious and "serious" or "general",
             department = serious and "质量部" or "客服部", priority = serious and 1 or 3 }
  end,
  clocks = {
    { name = "ack", start = "received", stop = "acknowledged", target = "1500ms", warn = 0.5 },
    { name = "resolve", start = "assigned", stop = "resolved", warn = 0.5, reopen = true,
      target = function(case)
        return case.classification.severity == "serious" and "2s" or "4s"
      end },
  },
  on_clock = function(case, clock, status)
    return { { tag = "sla_" .. clock.name .. "_" .. status },
             { event = "note", note = "on_clock " .. clock.name .. " " .. status } }
  end,
}
'''


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class SlaBase(unittest.TestCase):
    def start_vocd(self):
        folder = self.tmp_profile_dir()
        return Vocd(config_extra={"profile": os.path.join(folder, "sla.lua")})

    def tmp_profile_dir(self):
        import tempfile
        folder = tempfile.mkdtemp(prefix="vocd-sla-profile-")
        with open(os.path.join(folder, "sla.lua"), "w", encoding="utf-8") as f:
            f.write(PROFILE)
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", folder]))
        return folder

    def case(self, v, cid):
        st, _, body = v.request("GET", "/api/v1/cases/%d" % cid)
        self.assertEqual(st, 200, body)
        return body

    def event(self, v, cid, type_, **data):
        st, _, body = v.request("POST", "/api/v1/cases/%d/events" % cid,
                                {"type": type_, "data": data})
        self.assertEqual(st, 201, body)
        return body

    def clock(self, case, name, cycle=1):
        for c in case["clocks"]:
            if c["name"] == name and c.get("cycle", 1) == cycle:
                return c
        self.fail("no clock %s/%d in %r" % (name, cycle, case["clocks"]))

    def events_of(self, case, type_, clock=None):
        return [e for e in case["events"] if e["type"] == type_
                and (clock is None or (e.get("data") or {}).get("clock") == clock)]

    def wait_for(self, v, cid, type_, clock, count=1, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            case = self.case(v, cid)
            if len(self.events_of(case, type_, clock)) >= count:
                return case
            if time.monotonic() > deadline:
                self.fail("no %s for clock %s on case %d within %ss; events: %r"
                          % (type_, clock, cid, timeout,
                             [(e["type"], e["at"]) for e in case["events"]]))
            time.sleep(0.05)

    def metrics(self, v):
        st, _, body = v.request("GET", "/metrics")
        self.assertEqual(st, 200)
        return body.decode() if isinstance(body, bytes) else body

    def metric(self, text, name, labels):
        m = re.search(r"^%s\{%s\} ([0-9.e+-]+)$" % (re.escape(name), re.escape(labels)), text,
                      re.M)
        return float(m.group(1)) if m else None


class TestBreach(SlaBase):
    def test_breach_fires_once_everywhere(self):
        with self.start_vocd() as v:
            first = v.create_case(subject="普通问题", text="发货慢", channel="web")
            time.sleep(0.3)
            second = v.create_case(subject="严重质量问题", text="漏电", channel="web")
            case = self.case(v, first)
            ack = self.clock(case, "ack")
            for field in ("name", "target_s", "started_at", "due_at", "stopped_at", "status"):
                self.assertIn(field, ack)
            self.assertEqual(ack["target_s"], 1.5)
            self.assertIn(ack["status"], ("running", "warning"))
            self.assertAlmostEqual(parse_time(ack["due_at"]) - parse_time(ack["started_at"]),
                                   1.5, delta=0.002)

            case = self.wait_for(v, first, "clock_breached", "ack")
            self.wait_for(v, second, "clock_breached", "ack")
            time.sleep(1.0)  # any second firing would land now
            case = self.case(v, first)
            warnings = self.events_of(case, "clock_warning", "ack")
            breaches = self.events_of(case, "clock_breached", "ack")
            self.assertEqual(len(warnings), 1, case["events"])
            self.assertEqual(len(breaches), 1, case["events"])
            b = breaches[0]
            self.assertEqual(b["actor"], "vocd")
            self.assertEqual(b["data"]["clock"], "ack")
            self.assertEqual(b["data"]["cycle"], 1)
            self.assertEqual(b["data"]["due_at"], ack["due_at"])
            late = parse_time(b["at"]) - parse_time(b["data"]["due_at"])
            self.assertGreaterEqual(late, 0.0)
            self.assertLess(late, 1.0, "breach fired %.3f s after due" % late)
            self.assertLess(warnings[0]["seq"], b["seq"])
            self.assertEqual(self.clock(case, "ack")["status"], "breached")
            self.assertTrue(case["breached"])
            # on_clock ran once per firing: its tag and its note event.
            self.assertIn("sla_ack_breached", case["classification"]["tags"])
            self.assertIn("sla_ack_warning", case["classification"]["tags"])
            notes = [e for e in case["events"] if e["type"] == "note"
                     and e["note"] == "on_clock ack breached"]
            self.assertEqual(len(notes), 1)

            st, _, body = v.request("GET", "/api/v1/breaches")
            self.assertEqual(st, 200, body)
            items = [i for i in body["breaches"] if i["clock"] == "ack"]
            self.assertEqual([i["case_id"] for i in items], [first, second])
            self.assertEqual(items[0]["department"], "客服部")
            self.assertEqual(items[1]["department"], "质量部")
            self.assertEqual(items[0]["status"], "breached")
            self.assertGreater(items[0]["overdue_s"], items[1]["overdue_s"])
            self.assertGreater(items[1]["overdue_s"], 0.5)
            self.assertIsNone(body["next_cursor"])
            # Paging: limit + next_cursor walk the same list, one entry at a time.
            walked, cursor, pages = [], None, 0
            while True:
                path = "/api/v1/breaches?limit=1" + ("&cursor=" + cursor if cursor else "")
                st, _, page = v.request("GET", path)
                self.assertEqual(st, 200, page)
                self.assertLessEqual(len(page["breaches"]), 1)
                walked += [(i["case_id"], i["clock"]) for i in page["breaches"]]
                cursor = page["next_cursor"]
                pages += 1
                self.assertLess(pages, 10)
                if cursor is None:
                    break
            self.assertEqual(walked, [(i["case_id"], i["clock"]) for i in body["breaches"]])
            for bad in ("x", "1-2", "-1-2-3", "1-2-3-4"):
                st, _, err = v.request("GET", "/api/v1/breaches?cursor=" + bad)
                self.assertEqual(st, 400, err)
                self.assertEqual(err["error"]["code"], "bad_request")
            # An agent of 质量部 sees its department's case only.
            st, _, page = v.request("GET", "/api/v1/breaches", token="agent")
            self.assertEqual(st, 200, page)
            self.assertEqual([i["case_id"] for i in page["breaches"]], [second])
            self.assertIsNone(page["next_cursor"])

            text = self.metrics(v)
            self.assertEqual(self.metric(text, "vocd_clocks_open", 'status="breached"'), 2)
            self.assertEqual(self.metric(text, "vocd_clocks_open", 'status="running"'), 0)
            self.assertEqual(self.metric(text, "vocd_clock_breaches_total", 'clock="ack"'), 2)

            # vocctl shows it, human and JSON.
            env = dict(os.environ, VOCD_URL=v.url, VOCD_TOKEN=v.tokens["admin"])
            cp = subprocess.run([VOCCTL, "breaches"], capture_output=True, text=True, env=env,
                                timeout=30)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertIn("ack", cp.stdout)
            self.assertIn("客服部", cp.stdout)
            self.assertIn("breached", cp.stdout)
            cp = subprocess.run([VOCCTL, "--json", "breaches"], capture_output=True, text=True,
                                env=env, timeout=30)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            listed = [i["case_id"] for i in json.loads(cp.stdout)["breaches"]]
            self.assertEqual(listed[:2], [first, second])

            # Stopped late: off the open gauges and the list, into the time-to-stop histogram.
            self.event(v, first, "acknowledged")
            case = self.case(v, first)
            ack = self.clock(case, "ack")
            self.assertEqual(ack["status"], "breached")
            self.assertIsNotNone(ack["stopped_at"])
            text = self.metrics(v)
            self.assertEqual(self.metric(text, "vocd_clocks_open", 'status="breached"'), 1)
            m = re.search(r"^vocd_clock_time_to_stop_seconds_count(?:\{\})? (\d+)", text, re.M)
            self.assertIsNotNone(m, "no time-to-stop histogram in /metrics")
            self.assertEqual(int(m.group(1)), 1)
            st, _, body = v.request("GET", "/api/v1/breaches")
            self.assertEqual([i["case_id"] for i in body["breaches"] if i["clock"] == "ack"],
                             [second])

    def test_met_clock_never_fires(self):
        with self.start_vocd() as v:
            cid = v.create_case(subject="普通", text="咨询", channel="web")
            self.event(v, cid, "acknowledged")
            time.sleep(2.0)
            case = self.case(v, cid)
            self.assertEqual(self.clock(case, "ack")["status"], "met")
            self.assertEqual(self.events_of(case, "clock_breached"), [])
            self.assertEqual(self.events_of(case, "clock_warning"), [])
            st, _, body = v.request("GET", "/api/v1/breaches")
            self.assertEqual(body["breaches"], [])

    def test_waiting_pauses_and_resumed_moves_due(self):
        with self.start_vocd() as v:
            cid = v.create_case(subject="普通", text="等待客户", channel="web")
            before = self.clock(self.case(v, cid), "ack")
            self.event(v, cid, "waiting")
            case = self.case(v, cid)
            paused = self.clock(case, "ack")
            self.assertEqual(paused["status"], "paused")
            self.assertIsNone(paused["due_at"])
            time.sleep(2.0)  # past the original due
            case = self.case(v, cid)
            self.assertEqual(self.events_of(case, "clock_breached"), [])
            self.assertEqual(self.clock(case, "ack")["status"], "paused")
            self.event(v, cid, "resumed")
            case = self.case(v, cid)
            running = self.clock(case, "ack")
            self.assertIn(running["status"], ("running", "warning"))
            waited = [e for e in case["events"] if e["type"] == "waiting"][0]["at"]
            resumed = [e for e in case["events"] if e["type"] == "resumed"][0]["at"]
            pause_s = parse_time(resumed) - parse_time(waited)
            moved = parse_time(running["due_at"]) - parse_time(before["due_at"])
            # Event times and due times are shown in whole milliseconds.
            self.assertAlmostEqual(moved, pause_s, delta=0.0025)
            case = self.wait_for(v, cid, "clock_breached", "ack")
            b = self.events_of(case, "clock_breached", "ack")[0]
            self.assertEqual(b["data"]["due_at"], running["due_at"])
            late = parse_time(b["at"]) - parse_time(running["due_at"])
            self.assertGreaterEqual(late, 0.0)
            self.assertLess(late, 1.0)
            time.sleep(0.5)
            self.assertEqual(len(self.events_of(self.case(v, cid), "clock_breached")), 1)

    def test_reopen_starts_new_cycle(self):
        with self.start_vocd() as v:
            cid = v.create_case(subject="严重质量问题", text="漏电", channel="web")
            self.event(v, cid, "acknowledged")
            self.event(v, cid, "assigned", department="质量部")
            self.event(v, cid, "resolved")
            self.event(v, cid, "reopened")
            case = self.case(v, cid)
            first, second = self.clock(case, "resolve", 1), self.clock(case, "resolve", 2)
            self.assertEqual(first["status"], "met")
            self.assertEqual(second["status"], "running")
            self.assertEqual(second["target_s"], 2)
            case = self.wait_for(v, cid, "clock_breached", "resolve")
            b = self.events_of(case, "clock_breached", "resolve")
            self.assertEqual([e["data"]["cycle"] for e in b], [2])
            self.assertEqual(self.clock(case, "resolve", 1)["status"], "met")


RECEIVED_PROFILE = r'''
return {
  name = "sla-received",
  classify = function(case)
    local serious = (case.subject or ""):find("严重") ~= nil
    return { kind = "complaint", category = "产品质量",
             severity = serious and "serious" or "general", department = "质量部" }
  end,
  clocks = {
    -- The first response: starts when the case arrives, its target by severity.
    { name = "first", start = "received", stop = "acknowledged",
      target = function(case)
        return case.classification.severity == "serious" and "2h" or "24h"
      end },
  },
}
'''


class TestTargetAtReceived(SlaBase):
    """A clock that starts at `received` gets a target function that sees the
    classification (severity), not a case without one."""

    def test_target_by_severity(self):
        import tempfile
        folder = tempfile.mkdtemp(prefix="vocd-sla-profile-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", folder]))
        path = os.path.join(folder, "received.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(RECEIVED_PROFILE)
        with Vocd(config_extra={"profile": path}) as v:
            serious = v.create_case(subject="严重漏电", text="x", channel="web")
            general = v.create_case(subject="咨询", text="y", channel="web")
            for cid, target in ((serious, 7200), (general, 86400)):
                case = self.case(v, cid)
                first = self.clock(case, "first")
                self.assertEqual(first["target_s"], target, case["clocks"])
                self.assertEqual(first["status"], "running")
                self.assertEqual(first["started_at"], case["events"][0]["at"])
                self.assertAlmostEqual(parse_time(first["due_at"]) - parse_time(first["started_at"]),
                                       target, delta=0.002)
                self.assertNotIn("rule_error", case["classification"]["tags"])
            self.assertNotIn("clock target failed", v.log())


class TestRestart(SlaBase):
    """A deadline that fell due while vocd was not running fires once at start-up."""

    def down_through_deadline(self, stop):
        with self.start_vocd() as v:
            cid = v.create_case(subject="普通", text="停机", channel="web")
            self.event(v, cid, "acknowledged")  # only the resolve clock (4 s) runs
            self.event(v, cid, "assigned", department="客服部")
            resolve = self.clock(self.case(v, cid), "resolve")
            due = parse_time(resolve["due_at"])
            stop(v)
            self.assertLess(time.time(), due - 0.5, "vocd took too long to stop")
            time.sleep(max(0.0, due - time.time()) + 1.0)
            started = time.time()
            v.start()
            case = self.wait_for(v, cid, "clock_breached", "resolve", timeout=10)
            b = self.events_of(case, "clock_breached", "resolve")
            w = self.events_of(case, "clock_warning", "resolve")
            self.assertEqual(len(b), 1)
            self.assertEqual(len(w), 1)
            fired = parse_time(b[0]["at"])
            self.assertGreaterEqual(fired, started - 0.01)
            self.assertLess(fired - started, 2.0, "start-up firing took %.3f s"
                            % (fired - started))
            self.assertEqual(b[0]["data"]["due_at"], resolve["due_at"])
            text = self.metrics(v)
            self.assertEqual(self.metric(text, "vocd_clocks_open", 'status="breached"'), 1)
            st, _, body = v.request("GET", "/api/v1/breaches")
            self.assertEqual([i["case_id"] for i in body["breaches"]], [cid])
            # Another restart fires nothing again.
            v.restart()
            time.sleep(0.5)
            case = self.case(v, cid)
            self.assertEqual(len(self.events_of(case, "clock_breached", "resolve")), 1)
            self.assertEqual(len(self.events_of(case, "clock_warning", "resolve")), 1)
            self.assertEqual(self.clock(case, "resolve")["status"], "breached")

    def test_sigterm_before_due(self):
        self.down_through_deadline(lambda v: v.sigterm())

    def test_kill9_before_due(self):
        self.down_through_deadline(lambda v: v.kill9())

    def test_kill9_with_clock_paused(self):
        """A paused clock stays paused across kill -9 and runs on from where it was."""
        with self.start_vocd() as v:
            cid = v.create_case(subject="普通", text="暂停", channel="web")
            self.event(v, cid, "waiting")
            v.kill9()
            time.sleep(2.0)
            v.start()
            case = self.case(v, cid)
            self.assertEqual(self.clock(case, "ack")["status"], "paused")
            self.assertEqual(self.events_of(case, "clock_breached"), [])
            self.event(v, cid, "resumed")
            case = self.wait_for(v, cid, "clock_breached", "ack")
            self.assertEqual(len(self.events_of(case, "clock_breached", "ack")), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)

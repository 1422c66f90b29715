"""The plugin loader, black-box: vocd started with the mock plugins of tests/plugins/.

A plugin that cannot be used (ABI mismatch, no descriptor, wrong name, unresolved symbol,
missing file, failing init, bad options) stops start-up with a message naming it, unless its
entry says `optional: true`: then it is a warning and the daemon serves without it. A good
plugin gets its options validated, can submit cases and is handed new settings on SIGHUP.
"""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocd_bin  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("VOC_BUILD_DIR") or os.path.dirname(os.path.dirname(vocd_bin()))
MOCKS = os.path.join(BUILD_DIR, "tests", "plugins")


def core_abi():
    with open(os.path.join(SOURCE_DIR, "include", "vocd", "plugin.h"), encoding="utf-8") as f:
        return int(re.search(r"#define VOC_PLUGIN_ABI_VERSION (\d+)", f.read()).group(1))


def plugins(*entries):
    return {"plugin_dir": MOCKS, "plugins": list(entries)}


# name -> what the refusal must say
BROKEN = {
    "mock_bad_abi": r"plugin 'mock_bad_abi': .*mock_bad_abi\.so was built for plugin ABI version "
                    r"%d, this vocd provides ABI version %d" % (core_abi() + 1000, core_abi()),
    "mock_no_symbol": r"plugin 'mock_no_symbol': .* does not export voc_plugin_descriptor",
    "mock_wrong_name": r"plugin 'mock_wrong_name': .* describes itself as 'someone_else'",
    "mock_undefined": r"plugin 'mock_undefined': cannot load .*undefined symbol: "
                      r"mock_symbol_nobody_defines",
    "mock_missing": r"plugin 'mock_missing': cannot load .*mock_missing\.so",
    "mock_init_fail": r"plugin 'mock_init_fail': init failed",
}


class Loader(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(os.path.join(MOCKS, "mock_good.so")),
                        "mock plugins are not built in %s" % MOCKS)

    def assert_start_fails(self, entries, *patterns):
        """vocd with these plugin entries exits 1 at start-up, and --check exits 1 too; both
        say every pattern, with the config's file:line."""
        with Vocd(config_extra=plugins(*entries), start=False) as v:
            cp = v.run(timeout=60)
            self.assertEqual(cp.returncode, 1, "vocd should refuse to start:\n" + cp.stderr)
            check = v.run("--check", timeout=60)
            self.assertEqual(check.returncode, 1, check.stdout + check.stderr)
            for pattern in patterns:
                self.assertRegex(cp.stderr, r"ERROR .*vocd\.yaml:\d+: " + pattern)
                self.assertRegex(check.stdout, r"vocd\.yaml:\d+: " + pattern)
            return cp.stderr

    def test_each_broken_plugin_stops_startup(self):
        for name, pattern in BROKEN.items():
            with self.subTest(plugin=name):
                if name == "mock_init_fail":
                    # init only runs when the daemon starts; --check loads without init.
                    with Vocd(config_extra=plugins({"name": name}), start=False) as v:
                        cp = v.run(timeout=60)
                        self.assertEqual(cp.returncode, 1, cp.stderr)
                        self.assertRegex(cp.stderr, r"vocd\.yaml:\d+: " + pattern)
                        # The plugin's own reason, logged under its name, comes first.
                        self.assertRegex(cp.stderr, r"ERROR plugin/mock_init_fail: mock_init_fail: "
                                                    r"cannot reach the upstream system")
                        self.assertEqual(v.run("--check").returncode, 0)
                    continue
                self.assert_start_fails([{"name": name}], pattern)

    def test_abi_message_names_both_versions(self):
        err = self.assert_start_fails([{"name": "mock_good"}, {"name": "mock_bad_abi"}],
                                      BROKEN["mock_bad_abi"])
        self.assertIn("ABI version %d" % (core_abi() + 1000), err)
        self.assertIn("ABI version %d" % core_abi(), err)
        self.assertIn("rebuild it against this vocd's <vocd/plugin.h>", err)

    def test_optional_broken_plugins_are_skipped_with_a_warning(self):
        entries = [dict(name=n, optional=True) for n in BROKEN] + [{"name": "mock_good"}]
        with Vocd(config_extra=plugins(*entries)) as v:
            log = v.log()
            for name, pattern in BROKEN.items():
                self.assertRegex(log, r"WARN .*vocd\.yaml:\d+: (warning: )?" + pattern,
                                 "no skip warning for %s" % name)
                self.assertNotRegex(log, r"started plugin=%s\b" % name)
            self.assertRegex(log, r"INFO plugins: started plugin=mock_good version=0\.0\.1")
            status, _, body = v.request("GET", "/healthz", token=None)
            self.assertEqual(status, 200)
            status, _, body = v.request("GET", "/mock/good", token=None)
            self.assertEqual((status, body["greeting"]), (200, "hello"))
            # Warnings only: the configuration is valid.
            check = v.run("--check")
            self.assertEqual(check.returncode, 0, check.stdout)
            self.assertIn("mock_bad_abi", check.stdout)

    def test_plugin_options_are_validated(self):
        self.assert_start_fails(
            [{"name": "mock_good", "limit": 11, "colour": "red"}],
            r"plugins\.mock_good\.limit: 11 is outside 1\.\.10",
            r"unknown key 'plugins\.mock_good\.colour'")
        self.assert_start_fails([{"name": "mock_good", "limit": "many"}],
                                r"plugins\.mock_good\.limit")
        self.assert_start_fails([{"name": "Mock_Good"}], r"plugin name 'Mock_Good' must be")
        # A bad section of an optional plugin skips the plugin, not the daemon.
        with Vocd(config_extra=plugins({"name": "mock_good", "optional": True, "limit": 0})) as v:
            self.assertRegex(v.log(), r"WARN .*plugins\.mock_good\.limit.*optional plugin "
                                      r"'mock_good': skipped")
            status, _, _ = v.request("GET", "/mock/good", token=None)
            self.assertEqual(status, 404)

    def test_good_plugin_submits_cases(self):
        with Vocd(config_extra=plugins({"name": "mock_good", "greeting": "hi", "limit": 5})) as v:
            status, _, body = v.request("GET", "/mock/good", token=None)
            self.assertEqual((status, body), (200, {"greeting": "hi", "limit": 5, "reloads": 0}))

            status, _, r = v.request("POST", "/mock/good", {"text": "插件来的反馈",
                                                            "external_id": "m-1"}, token=None)
            self.assertEqual(status, 200)
            self.assertEqual(r["status"], 1, r)  # VOC_SUBMIT_CREATED
            case_id = r["id"]
            self.assertGreater(case_id, 0)
            status, _, r = v.request("POST", "/mock/good", {"text": "again",
                                                            "external_id": "m-1"}, token=None)
            self.assertEqual((r["status"], r["id"]), (2, case_id))  # VOC_SUBMIT_EXISTS
            status, _, r = v.request("POST", "/mock/good", {"text": 5}, token=None)
            self.assertEqual((r["status"], r["code"], r["http_status"]), (4, "wrong_type", 400))
            status, _, r = v.request("POST", "/mock/good", b"{not json", token=None)
            self.assertEqual((r["status"], r["code"]), (4, "invalid_json"))

            status, _, case = v.request("GET", "/api/v1/cases/%d" % case_id)
            self.assertEqual(status, 200)
            # No channel in the record: the plugin's name is the channel.
            self.assertEqual(case["channel"], "mock_good")
            self.assertEqual(case["text"], "插件来的反馈")
            status, _, metrics = v.request("GET", "/metrics", token=None)
            self.assertIn(b"vocd_plugin_mock_good_posts_total 4", metrics)

    def test_notify_and_case_get(self):
        """The calls of plugin ABI 1.1: a notification through the outbox (idempotent by
        ref, checked before it is queued) and the case as the API shows it."""
        extra = plugins({"name": "mock_good"})
        extra["notifiers"] = [{"name": "journal", "type": "log"}]
        with Vocd(config_extra=extra) as v:
            cid = v.create_case(subject="通知测试", text="插件排队的通知")
            status, _, case = v.request("GET", "/mock/good/case?case=%d" % cid, token=None)
            self.assertEqual((status, case["id"], case["subject"]), (200, cid, "通知测试"))
            self.assertIn("clocks", case)
            self.assertIn("events", case)
            status, _, r = v.request("GET", "/mock/good/case?case=999999", token=None)
            self.assertEqual((status, r), (404, {"found": 0}))

            def notify(body, case_id=cid, ref=None):
                path = "/mock/good/notify?case=%d" % case_id + ("&ref=%s" % ref if ref else "")
                status, _, r = v.request("POST", path, body, token=None)
                self.assertEqual(status, 200, r)
                return r

            mark = v.log_mark()
            r = notify({"notifier": "journal", "message": "来自插件"}, ref="once")
            self.assertEqual((r["status"], r["id"]), (1, cid))  # CREATED
            v.wait_log(r"INFO notify/journal: case=%d notification=\d+ event=- "
                       r"message=\"来自插件\"" % cid, since=mark)
            r = notify({"notifier": "journal", "message": "again"}, ref="once")
            self.assertEqual((r["status"], r["id"]), (2, cid))  # EXISTS: nothing queued
            r = notify({"notifier": "journal", "message": "no ref"})
            self.assertEqual(r["status"], 1)
            # refused before anything is queued (INVALID)
            for body, code in (({"notifier": "nope", "message": "x"}, "unknown_notifier"),
                               ({"notifier": "journal"}, "wrong_type"),
                               ({"notifier": "journal", "message": "x", "to": ["a@b.c"]},
                                "wrong_notifier"),
                               ({"notifier": "journal", "message": "x", "colour": 1},
                                "unknown_field"),
                               (b"{not json", "invalid_json")):
                r = notify(body)
                self.assertEqual((r["status"], r["code"], r["http_status"]), (4, code, 400), body)
            r = notify({"notifier": "journal", "message": "x"}, case_id=999999)
            self.assertEqual((r["status"], r["code"]), (4, "not_found"))
            time.sleep(0.3)
            self.assertEqual(len(re.findall(r"notify/journal: case=%d " % cid, v.log())), 2)

    def test_reload_hands_new_settings_or_keeps_old(self):
        cfg = plugins({"name": "mock_good", "greeting": "hello"})
        with Vocd(config_extra=cfg) as v:
            mark = v.log_mark()
            v.write_config(plugins({"name": "mock_good", "greeting": "bonjour"}))
            v.sighup()
            v.wait_log(r"INFO plugins: reloaded plugin=mock_good", since=mark)
            _, _, body = v.request("GET", "/mock/good", token=None)
            self.assertEqual((body["greeting"], body["reloads"]), ("bonjour", 1))

            # The plugin refuses: it keeps what it had.
            mark = v.log_mark()
            v.write_config(plugins({"name": "mock_good", "greeting": "refuse"}))
            v.sighup()
            v.wait_log(r"plugin refused its new settings.*plugin=mock_good", since=mark)
            _, _, body = v.request("GET", "/mock/good", token=None)
            self.assertEqual((body["greeting"], body["reloads"]), ("bonjour", 1))

            # Invalid options: the whole reload fails, nothing changes.
            mark = v.log_mark()
            v.write_config(plugins({"name": "mock_good", "greeting": "hallo", "limit": 99}))
            v.sighup()
            v.wait_log(r"reload failed, the old configuration stays", since=mark)
            _, _, body = v.request("GET", "/mock/good", token=None)
            self.assertEqual((body["greeting"], body["reloads"]), ("bonjour", 1))


class Lifecycle(unittest.TestCase):
    """What the core calls, in which order, when start() fails half way; and timer handles
    that a plugin cancels after they fired."""

    def assert_stopped_then_destroyed(self, log):
        self.assertIn("mock_start_fail: stopped", log)
        self.assertLess(log.index("mock_start_fail: stopped"),
                        log.index("mock_start_fail: destroyed after stop"))
        self.assertNotIn("destroyed without stop", log)

    def test_optional_plugin_whose_start_fails_is_stopped_and_unloaded(self):
        entries = [{"name": "mock_start_fail", "optional": True}, {"name": "mock_good"}]
        with Vocd(config_extra=plugins(*entries)) as v:
            log = v.log()
            self.assertRegex(log, r"WARN .*vocd\.yaml:\d+: (warning: )?plugin 'mock_start_fail': "
                                  r"start failed .*\(optional: skipped\)")
            self.assert_stopped_then_destroyed(log)
            port = int(re.search(r"mock_start_fail: listening port=(\d+)", log).group(1))
            # Its listener is closed: nothing calls into the freed state.
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            # Its route and its timer went with it.
            status, _, _ = v.request("GET", "/mock/start_fail", token=None)
            self.assertEqual(status, 404)
            time.sleep(0.3)  # six periods of its timer
            self.assertNotIn("timer fired", v.log())
            self.assertNotIn("connection accepted", v.log())
            status, _, body = v.request("GET", "/mock/good", token=None)
            self.assertEqual((status, body["greeting"]), (200, "hello"))

    def test_required_plugin_whose_start_fails_stops_startup_cleanly(self):
        with Vocd(config_extra=plugins({"name": "mock_start_fail"}), start=False) as v:
            cp = v.run(timeout=60)
            self.assertEqual(cp.returncode, 1, cp.stderr)
            self.assertRegex(cp.stderr, r"vocd\.yaml:\d+: plugin 'mock_start_fail': start failed")
            self.assert_stopped_then_destroyed(cp.stderr)

    def test_timer_handles_may_be_cancelled_after_they_fired(self):
        with Vocd(config_extra=plugins({"name": "mock_timers"})) as v:
            expected = {"self": 1, "a": 1, "b": 1, "rep": 3, "never": 0, "late": 1,
                        "distinct_handles": 1}
            deadline = time.time() + 10
            while True:
                status, _, body = v.request("GET", "/mock/timers", token=None)
                self.assertEqual(status, 200)
                if body == expected or time.time() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(body, expected)
            time.sleep(0.1)  # the cancelled repeating timer stays quiet
            _, _, body = v.request("GET", "/mock/timers", token=None)
            self.assertEqual(body, expected)


if __name__ == "__main__":
    unittest.main(verbosity=2)

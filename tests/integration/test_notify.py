"""Notification delivery (docs/notifications.md): a profile whose SLA clock has a 2-second
target and whose on_clock queues a notification; real loopback receivers stand in for the
webhook endpoint and the SMTP server.

  1. the breach notification arrives once, signed over "<timestamp>.<body>", with its
     Idempotency-Key; the log notifier writes its line; a restart does not send it again
  2. the receiver answers 500 twice, then 200: delivered on the third attempt, one 2xx
  3. kill -9 between the due time and the delivery (the request swallowed; the receiver
     down): after the restart the notification arrives, one distinct Idempotency-Key, one
     clock_breached event on the case
  4. e-mail to a minimal SMTP sink: "[VOC-n] ..." subject, RFC 2047-decoded, threading headers;
     a reply without the tag threads into the case by In-Reply-To (the e-mail channel)
  5. a receiver that always fails and expire: 3s -> failed, counted; an unknown notifier name
     fails at once

Python standard library only; the SMTP sink is written here (smtpd left Python in 3.12)."""

import email
import email.policy
import email.utils
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import smtplib
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocd_bin  # noqa: E402
from smtp_sink import SmtpSink  # noqa: E402

SECRET = "notify-secret-7d1e"
MESSAGE = "respond 超时: 工单 {id}\n第二行说明"


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- a webhook receiver ----

class Receiver:
    """http.server in a thread. `script` is a list of statuses for the first requests, then
    `default`. The status "hang" records the request and never answers (until released)."""

    def __init__(self, script=(), default=200, port=0):
        self.requests = []
        self.answers = []
        self.script = list(script)
        self.default = default
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": self.headers,
                                              "body": body, "at": time.time()})
                    status = receiver.script.pop(0) if receiver.script else receiver.default
                if status == "hang":
                    receiver.release.wait(60)
                    self.close_connection = True
                    return
                if isinstance(status, tuple):  # ("slow", seconds, status)
                    time.sleep(status[1])
                    status = status[2]
                reply = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                with receiver.lock:
                    receiver.answers.append(status)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/voc/notify" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# ---- the daemon side ----

def profile_text(notifier):
    message = MESSAGE.replace("{id}", '" .. case.id .. "').replace("\n", "\\n")
    return """
return {
  name = "notify-test",
  classify = function(case) return { kind = "complaint", category = "其他" } end,
  clocks = {
    { name = "respond", start = "received", stop = "resolved", target = "2s" },
  },
  on_clock = function(case, clock, status)
    if status == "breached" then
      local out = {}
      for _, n in ipairs({ %s }) do
        out[#out + 1] = { notify = n, message = "%s" }
      end
      return out
    end
    return {}
  end,
}
""" % (", ".join('"%s"' % n for n in notifier), message)


def webhook(name, url, **extra):
    n = {"name": name, "type": "webhook", "url": url, "secret": SECRET, "timeout": "5s"}
    n.update(extra)
    return n


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vocd-notify-")
        self.closers = []

    def tearDown(self):
        for close in reversed(self.closers):
            close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def vocd(self, notify_names, notifiers):
        path = os.path.join(self.tmp, "profile-%d.lua" % len(self.closers))
        with open(path, "w", encoding="utf-8") as f:
            f.write(profile_text(notify_names))
        return Vocd(config_extra={"profile": path, "notifiers": notifiers})

    def receiver(self, *args, **kwargs):
        r = Receiver(*args, **kwargs)
        self.closers.append(r.close)
        return r

    @staticmethod
    def metrics(v):
        status, _, body = v.request("GET", "/metrics", token=None)
        assert status == 200
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def metric(self, v, notifier, outcome):
        key = 'vocd_notifications_total{notifier="%s",outcome="%s"}' % (notifier, outcome)
        return self.metrics(v).get(key, 0)

    def wait_metric(self, v, notifier, outcome, want, timeout=15):
        wait_for(lambda: self.metric(v, notifier, outcome) == want, timeout,
                 "%s/%s == %s" % (notifier, outcome, want))

    def breach_events(self, v, case_id):
        status, _, case = v.request("GET", "/api/v1/cases/%d" % case_id)
        self.assertEqual(status, 200)
        return [e for e in case["events"] if e["type"] == "clock_breached"]

    def check_signed(self, req, case_id):
        """The request is signed as docs/notifications.md says; returns the payload."""
        h = req["headers"]
        self.assertEqual(h.get("Content-Type"), "application/json")
        ts = h.get("X-Voc-Timestamp")
        self.assertRegex(ts, r"^\d+$")
        self.assertLess(abs(int(ts) - req["at"]), 60)
        mac = hmac.new(SECRET.encode(), ts.encode() + b"." + req["body"],
                       hashlib.sha256).hexdigest()
        self.assertEqual(h.get("X-Voc-Signature"), "sha256=" + mac)
        payload = json.loads(req["body"].decode("utf-8"))
        self.assertEqual(h.get("Idempotency-Key"), "vocd-notification-%d" % payload["id"])
        self.assertEqual(set(payload), {"id", "notifier", "message", "created_at", "attempt",
                                        "case", "event"})
        self.assertEqual(payload["message"], MESSAGE.format(id=case_id))
        self.assertEqual(payload["case"]["id"], case_id)
        self.assertEqual(payload["event"]["type"], "clock_breached")
        self.assertEqual(payload["event"]["data"]["clock"], "respond")
        self.assertEqual(h.get("X-Voc-Attempt"), str(payload["attempt"]))
        return payload

    # 1
    def test_breach_arrives_once_signed(self):
        r = self.receiver()
        notifiers = [webhook("ops-hook", r.url), {"name": "journal", "type": "log"}]
        with self.vocd(["ops-hook", "journal"], notifiers) as v:
            self.assertEqual(self.metric(v, "ops-hook", "sent"), 0)  # listed from the start
            t0 = time.time()
            cid = v.create_case(channel="web", subject="冰箱漏水", text="冰箱一直漏水")
            wait_for(lambda: r.count() >= 1, 20, "the webhook request")
            self.assertGreaterEqual(r.requests[0]["at"] - t0, 1.5)  # not before the breach
            payload = self.check_signed(r.requests[0], cid)
            self.assertEqual(payload["notifier"], "ops-hook")
            self.assertEqual(payload["attempt"], 1)
            self.assertTrue(payload["case"]["breached"])
            wait_for(lambda: r.answers, 10, "the receiver's answer")
            self.assertEqual(r.answers, [200])
            self.wait_metric(v, "ops-hook", "sent", 1)
            self.wait_metric(v, "journal", "sent", 1)
            v.wait_log(r"^INFO notify/journal: case=%d notification=\d+ event=clock_breached "
                       r"message=\"respond 超时: 工单 %d 第二行说明\"$" % (cid, cid))
            wait_for(lambda: self.metrics(v).get("vocd_notifications_pending") == 0, 10,
                     "no pending notifications")
            time.sleep(2.5)
            self.assertEqual(r.count(), 1)
            # Acknowledged means acknowledged: a restart does not send it again.
            v.restart()
            time.sleep(2.5)
            self.assertEqual(r.count(), 1)
            self.assertEqual(self.metric(v, "ops-hook", "sent"), 0)
            self.assertEqual(len(self.breach_events(v, cid)), 1)

    # 2
    def test_retries_until_2xx(self):
        r = self.receiver(script=[500, 500, 200])
        with self.vocd(["ops-hook"], [webhook("ops-hook", r.url)]) as v:
            cid = v.create_case(channel="web", subject="retry", text="retry me")
            wait_for(lambda: r.count() >= 3, 25, "three attempts")
            payloads = [self.check_signed(req, cid) for req in r.requests]
            self.assertEqual([p["attempt"] for p in payloads], [1, 2, 3])
            self.assertEqual(len({req["headers"]["Idempotency-Key"] for req in r.requests}), 1)
            gaps = [b["at"] - a["at"] for a, b in zip(r.requests, r.requests[1:])]
            self.assertGreater(gaps[0], 0.6)  # backoff 1 s +-20 %
            self.assertGreater(gaps[1], 1.4)  # then 2 s +-20 %
            self.wait_metric(v, "ops-hook", "sent", 1)
            self.assertEqual(self.metric(v, "ops-hook", "retry"), 2)
            v.wait_log(r"WARN notify: attempt failed, will retry id=\d+ notifier=ops-hook "
                       r"attempt=1 .*error=\"HTTP 500")
            time.sleep(2.5)
            self.assertEqual(r.count(), 3)
            self.assertEqual(r.answers, [500, 500, 200])

    # 3a: the request reached the receiver, vocd died before the answer
    def test_kill9_while_the_request_hangs(self):
        r = self.receiver(script=["hang"], default=200)
        notifiers = [webhook("ops-hook", r.url, timeout="60s")]
        with self.vocd(["ops-hook"], notifiers) as v:
            cid = v.create_case(channel="web", subject="kill", text="kill during delivery")
            wait_for(lambda: r.count() >= 1, 20, "the first (swallowed) request")
            v.kill9()
            r.release.set()
            v.start()
            wait_for(lambda: len(r.answers) >= 1, 20, "delivery after the restart")
            time.sleep(2.5)
            self.assertEqual(r.count(), 2)
            payloads = [self.check_signed(req, cid) for req in r.requests]
            # Sent again as the same notification: the receiver de-duplicates by the key.
            self.assertEqual(len({req["headers"]["Idempotency-Key"] for req in r.requests}), 1)
            self.assertEqual(payloads[0]["id"], payloads[1]["id"])
            self.assertEqual(r.answers, [200])
            self.assertEqual(len(self.breach_events(v, cid)), 1)
            self.wait_metric(v, "ops-hook", "sent", 1)

    # 3b: the receiver was down at the due time
    def test_kill9_while_the_receiver_is_down(self):
        placeholder = socket.socket()
        placeholder.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = placeholder.getsockname()[1]
        url = "http://127.0.0.1:%d/voc/notify" % port
        with self.vocd(["ops-hook"], [webhook("ops-hook", url)]) as v:
            mark = v.log_mark()
            cid = v.create_case(channel="web", subject="down", text="receiver down")
            v.wait_log(r"WARN notify: attempt failed, will retry .*notifier=ops-hook", since=mark,
                       timeout=20)
            v.kill9()
            placeholder.close()
            r = self.receiver(port=port)
            v.start()
            wait_for(lambda: r.count() >= 1, 20, "delivery after the restart")
            time.sleep(2.5)
            self.assertEqual(r.count(), 1)
            payload = self.check_signed(r.requests[0], cid)
            self.assertGreaterEqual(payload["attempt"], 2)  # the refused attempt was recorded
            self.assertEqual(len(self.breach_events(v, cid)), 1)
            self.wait_metric(v, "ops-hook", "sent", 1)

    # drain: SIGTERM while a delivery is under way waits for it and records it
    def test_sigterm_waits_for_the_delivery(self):
        r = self.receiver(script=[("slow", 2.0, 200)])
        with self.vocd(["ops-hook"], [webhook("ops-hook", r.url)]) as v:
            cid = v.create_case(channel="web", subject="drain", text="slow receiver")
            wait_for(lambda: r.count() >= 1, 20, "the request")
            v.sigterm()
            wait_for(lambda: r.answers, 10, "the receiver's answer")
            self.assertEqual(r.answers, [200])
            v.start()
            time.sleep(2.5)
            self.assertEqual(r.count(), 1)  # recorded as sent before the exit
            self.assertEqual(len(self.breach_events(v, cid)), 1)

    # 4
    def test_email(self):
        sink = SmtpSink()
        self.closers.append(sink.close)
        notifiers = [{"name": "ops-mail", "type": "email",
                      "smtp": "smtp://127.0.0.1:%d" % sink.port,
                      "from": "VOC Daemon <voc@example.com>",
                      "to": ["ops@example.com", "质量部 <quality@example.com>"]}]
        with self.vocd(["ops-mail"], notifiers) as v:
            cid = v.create_case(channel="web", subject="邮件通知", text="请发邮件")
            wait_for(lambda: sink.messages, 20, "the mail")
            self.wait_metric(v, "ops-mail", "sent", 1)
            time.sleep(1)
            self.assertEqual(len(sink.messages), 1)
            got = sink.messages[0]
            self.assertEqual(got["from"], "<voc@example.com>")
            self.assertEqual(got["rcpt"], ["<ops@example.com>", "<quality@example.com>"])
            msg = email.message_from_bytes(got["data"], policy=email.policy.default)
            self.assertEqual(msg["Subject"], "[VOC-%d] respond 超时: 工单 %d" % (cid, cid))
            self.assertIn("=?UTF-8?B?", got["data"].decode("ascii"))  # encoded on the wire
            self.assertRegex(msg["Message-ID"], r"^<vocd-notification-\d+\.\d+@example\.com>$")
            self.assertLess(abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp()
                                - time.time()), 60)
            self.assertEqual(msg["Auto-Submitted"], "auto-generated")
            self.assertEqual(msg["X-Voc-Case"], str(cid))
            self.assertEqual(msg.get_content_type(), "text/plain")
            self.assertEqual(msg.get_content_charset(), "utf-8")
            # base64 carries the text in canonical form (CRLF line ends, RFC 2045)
            text = msg.get_content().replace("\r\n", "\n")
            self.assertIn(MESSAGE.format(id=cid), text)
            self.assertIn("Case %d" % cid, text)
            self.assertIn("clock_breached", text)

    # 4b: a reply that lost the [VOC-n] tag still threads, by In-Reply-To
    def test_email_reply_threads_by_message_id(self):
        plugin_dir = os.path.join(os.environ.get("VOC_BUILD_DIR") or os.path.dirname(
            os.path.dirname(os.path.abspath(vocd_bin()))), "plugins")
        if not os.path.exists(os.path.join(plugin_dir, "email.so")):
            self.skipTest("the e-mail channel plugin is not built")
        sink = SmtpSink()
        self.closers.append(sink.close)
        notifiers = [{"name": "ops-mail", "type": "email",
                      "smtp": "smtp://127.0.0.1:%d" % sink.port,
                      "from": "voc@example.com", "to": ["ops@example.com"]}]
        path = os.path.join(self.tmp, "profile-mail.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(profile_text(["ops-mail"]))
        extra = {"profile": path, "notifiers": notifiers, "plugin_dir": plugin_dir,
                 "plugins": [{"name": "email", "lmtp": "127.0.0.1:0"}]}
        with Vocd(config_extra=extra) as v:
            lmtp_port = int(v.wait_log(r"INFO plugin/email: listening lmtp "
                                       r"addr=127\.0\.0\.1:(\d+)").group(1))
            cid = v.create_case(channel="web", subject="回复线程", text="请回复")
            wait_for(lambda: sink.messages, 20, "the mail")
            self.wait_metric(v, "ops-mail", "sent", 1)
            sent = email.message_from_bytes(sink.messages[0]["data"],
                                            policy=email.policy.default)
            reply = ("From: ops@example.com\r\nTo: voc@example.com\r\n"
                     "Subject: Re: =?UTF-8?B?5aSE55CG6L+b5bGV?=\r\n"
                     "Message-ID: <reply-%d@example.com>\r\nIn-Reply-To: %s\r\n"
                     "References: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=UTF-8\r\n\r\n已安排上门维修\r\n"
                     % (cid, sent["Message-ID"], sent["Message-ID"],
                        email.utils.formatdate())).encode()
            client = smtplib.LMTP("127.0.0.1", lmtp_port, timeout=30)
            try:
                client.sendmail("ops@example.com", ["voc@example.com"], reply)
            finally:
                client.quit()
            status, _, case = v.request("GET", "/api/v1/cases/%d" % cid)
            self.assertEqual(status, 200)
            messages = [e for e in case["events"] if e["type"] == "message"]
            self.assertEqual(len(messages), 1, case["events"])

    # 5
    def test_expiry_and_unknown_notifier(self):
        r = self.receiver(default=503)
        notifiers = [webhook("flaky", r.url, expire="3s")]
        with self.vocd(["flaky", "nope"], notifiers) as v:
            mark = v.log_mark()
            cid = v.create_case(channel="web", subject="expire", text="never delivered")
            # A notifier the config does not have: refused when the action is carried out
            # (the profile's fault, on the case), never queued.
            v.wait_log(r"WARN rules: notify action names no configured notifier 'nope' "
                       r"case=%d" % cid, since=mark, timeout=20)
            v.wait_log(r"ERROR notify: notification failed, giving up id=\d+ notifier=flaky "
                       r"case=%d attempts=\d+ error=\"HTTP 503" % cid, since=mark, timeout=20)
            status, _, case = v.request("GET", "/api/v1/cases/%d" % cid)
            self.assertEqual(status, 200)
            self.assertIn("rule_error", case["classification"]["tags"])
            self.assertEqual(self.metric(v, "flaky", "failed"), 1)
            self.assertEqual(self.metric(v, "nope", "failed"), 0)
            self.assertNotIn("notifier=nope", v.log()[mark:])
            self.assertGreaterEqual(self.metric(v, "flaky", "retry"), 1)
            self.assertEqual(self.metric(v, "flaky", "sent"), 0)
            attempts = r.count()
            self.assertGreaterEqual(attempts, 2)
            self.assertEqual(self.metrics(v).get("vocd_notifications_pending"), 0)
            # Nothing after the expiry, and nothing after a restart either.
            self.assertLess(r.requests[-1]["at"] - r.requests[0]["at"], 3.5)
            v.restart()
            time.sleep(2.5)
            self.assertEqual(r.count(), attempts)

    def test_notifier_removed_by_reload(self):
        r = self.receiver(default=500)
        path = os.path.join(self.tmp, "profile-reload.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(profile_text(["ops-hook"]))
        extra = {"profile": path, "notifiers": [webhook("ops-hook", r.url)]}
        with Vocd(config_extra=extra) as v:
            mark = v.log_mark()
            cid = v.create_case(channel="web", subject="reload", text="notifier goes away")
            v.wait_log(r"WARN notify: attempt failed, will retry .*notifier=ops-hook", since=mark,
                       timeout=20)
            v.write_config({"profile": path, "notifiers": [{"name": "journal", "type": "log"}]})
            v.sighup()
            v.wait_log(r"INFO daemon: reloaded", since=mark)
            v.wait_log(r"ERROR notify: notification failed, giving up id=\d+ notifier=ops-hook "
                       r"case=%d attempts=\d+ error=\"no notifier named 'ops-hook'" % cid,
                       since=mark, timeout=20)
            attempts = r.count()
            time.sleep(2.5)
            self.assertEqual(r.count(), attempts)
            self.assertEqual(self.metric(v, "ops-hook", "failed"), 1)
            self.assertEqual(self.metric(v, "journal", "sent"), 0)  # listed after the reload


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""The e-mail channel plugin, black-box: real LMTP clients (Python's smtplib.LMTP, raw
pipelined sockets, swaks) and the Maildir intake against a running vocd, and — where the
machine can run one — a real Postfix on 127.0.0.1 delivering into the LMTP listener.

Covered (docs/email.md): Chinese samples (GB2312 base64, GBK quoted-printable, Big5, HTML-only,
inline image, RFC 2231 attachment name) become cases with decoded subjects, bodies and stored
attachments; replies thread by In-Reply-To / References and by [VOC-<id>]; re-delivery of a
Message-ID writes nothing; bounces and auto-replies never open a case; every reply code
(250 per recipient, 452 store full, 552 size, 554 broken MIME / MIME bomb, 500/503 protocol);
pipelining and many messages per connection; a 250 survives kill -9; Maildir new/ -> cur/
only once the case is durable, rejected/ for mail that can never be taken.
"""

import base64
import calendar
import email
import email.policy
import email.utils
import glob
import hashlib
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocd_bin  # noqa: E402
from smtp_sink import SmtpSink  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("VOC_BUILD_DIR") or os.path.dirname(os.path.dirname(vocd_bin()))
PLUGIN_DIR = os.path.abspath(os.path.join(BUILD_DIR, "plugins"))
FIXTURES = os.path.join(SOURCE_DIR, "tests", "fixtures", "mail")
LMTP_RE = r"INFO plugin/email: listening lmtp addr=127\.0\.0\.1:(\d+)"


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def b64word(text, charset="UTF-8"):
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


_counter = [0]


def make_message(subject, body, msgid=None, headers=None, charset="UTF-8"):
    """A plain text message; returns (bytes, message id)."""
    _counter[0] += 1
    msgid = msgid or "it-%d-%d-%s@test.example" % (os.getpid(), _counter[0], time.time())
    lines = ["From: %s <customer@example.cn>" % b64word("客户"),
             "To: feedback@example.com",
             "Subject: %s" % b64word(subject, charset),
             "Date: %s" % email.utils.formatdate(localtime=True),
             "Message-ID: <%s>" % msgid,
             "MIME-Version: 1.0"]
    lines += headers or []
    lines += ["Content-Type: text/plain; charset=%s" % charset,
              "Content-Transfer-Encoding: base64", ""]
    text = "\r\n".join(lines) + "\r\n"
    return text.encode() + base64.encodebytes(body.encode(charset)).replace(b"\n", b"\r\n"), msgid


def plugin_yaml(maildir, **options):
    lines = ["plugin_dir: %s" % PLUGIN_DIR, "plugins:", "  - name: email",
             "    lmtp: 127.0.0.1:0", "    maildir: %s" % maildir, "    maildir_rescan: 1s"]
    for key, value in options.items():
        lines.append("    %s: %s" % (key, value))
    return "\n".join(lines) + "\n"


class Lmtp:
    """An LMTP client that reads one reply per accepted recipient after DATA (smtplib's
    sendmail reads only one)."""

    def __init__(self, port):
        self.c = smtplib.LMTP("127.0.0.1", port, timeout=30)
        code, _ = self.c.ehlo("it.test")
        assert code == 250, code

    def send(self, data, rcpts=("feedback@example.com",), sender="customer@example.cn"):
        """Returns [(code, text)], one per recipient (or the MAIL/RCPT refusal)."""
        code, msg = self.c.mail(sender)
        if code != 250:
            self.c.rset()
            return [(code, msg.decode())]
        accepted = 0
        for r in rcpts:
            code, msg = self.c.rcpt(r)
            if code == 250:
                accepted += 1
        code, msg = self.c.data(data)
        replies = [(code, msg.decode())]
        for _ in range(accepted - 1):
            code, msg = self.c.getreply()
            replies.append((code, msg.decode()))
        return replies

    def close(self):
        try:
            self.c.quit()
        except smtplib.SMTPException:
            pass


def case_id_of(reply_text):
    m = re.search(r"case (\d+)", reply_text)
    assert m, reply_text
    return int(m.group(1))


class EmailChannel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = Vocd(start=False)
        cls.maildir = os.path.join(cls.v.dir, "Maildir")
        cls.v.write_config(plugin_yaml(cls.maildir, max_message_size="2MB",
                                       max_mime_parts=500,
                                       attachments="{ max_size: 512KB, max_count: 5 }"))
        cls.v.start()
        cls.port = int(cls.v.wait_log(LMTP_RE).group(1))
        cls.attach_root = os.path.join(cls.v.data_dir, "email", "attachments")

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def setUp(self):
        self.v.assert_alive()
        self.lmtp = Lmtp(self.port)

    def tearDown(self):
        self.lmtp.close()
        self.v.assert_alive()

    def case(self, cid):
        status, _, body = self.v.request("GET", "/api/v1/cases/%d" % cid)
        self.assertEqual(status, 200, body)
        return body

    def case_count(self):
        status, _, body = self.v.request("GET", "/api/v1/cases?limit=1000&channel=email")
        self.assertEqual(status, 200)
        return len(body["cases"])

    def deliver_ok(self, data, rcpts=("feedback@example.com",)):
        replies = self.lmtp.send(data, rcpts)
        self.assertEqual(len(replies), len(rcpts), replies)
        for code, text in replies:
            self.assertEqual(code, 250, replies)
        return case_id_of(replies[0][1]), replies

    # ---- decoding ----

    def test_chinese_samples_become_cases(self):
        expect = {
            "gb2312_base64.eml": ("电饭煲无法加热，要求更换", "张伟", "zhangwei@example.cn",
                                  "客服王堃说会转给质量部"),
            "gbk_qp.eml": ("发货太慢，客服态度差", "李芳", "lifang@example.net",
                           "服务态度也很差"),
            "big5.eml": ("電池續航問題", "陳先生", "chen@example.com.tw",
                         "貴公司的產品品質有問題"),
            "html_only.eml": ("智能门锁建议", "刘洋", "liuyang@example.org",
                              "我对“智能门锁”有两点建议：\n\n- 指纹识别速度<1秒"),
            "related_inline.eml": ("包装破损（见图）", "Wang Fang", "wangfang@example.com",
                                   "里面的杯子碎了一个"),
            "mixed_jpeg_rfc2231.eml": ("门把手断裂（附照片）", "赵磊", "zhaolei@example.cn",
                                       "门把手用了一个月就断了"),
        }
        for name, (subject, who, contact, phrase) in expect.items():
            with self.subTest(sample=name):
                cid, replies = self.deliver_ok(fixture(name),
                                               ("feedback@example.com", "voc@example.com"))
                self.assertRegex(replies[0][1], r"<feedback@example.com> (case \d+ created|"
                                 r"already delivered)")
                self.assertRegex(replies[1][1], r"<voc@example.com>")
                c = self.case(cid)
                self.assertEqual(c["channel"], "email")
                self.assertEqual(c["subject"], subject)
                self.assertEqual(c["customer"]["name"], who)
                self.assertEqual(c["customer"]["contact"], contact)
                self.assertIn(phrase, c["text"])
                self.assertNotIn("\r", c["text"])
                self.assertEqual(c["events"][0]["type"], "received")
        # attachments: stored content-addressed, listed on the case
        cid, _ = self.deliver_ok(fixture("mixed_jpeg_rfc2231.eml"))
        atts = self.case(cid)["attachments"]
        self.assertEqual([a["name"] for a in atts], ["破损照片.jpg", "订单截图.txt"])
        self.assertEqual(atts[0]["type"], "image/jpeg")
        self.assertEqual(atts[0]["size"], 1051)
        for a in atts:
            path = os.path.join(self.attach_root, a["sha256"][:2], a["sha256"][2:])
            with open(path, "rb") as f:
                content = f.read()
            self.assertEqual(hashlib.sha256(content).hexdigest(), a["sha256"])
            self.assertEqual(len(content), a["size"])
        inline = self.case(case_id_of(self.lmtp.send(fixture("related_inline.eml"))[0][1]))
        self.assertEqual([(a["name"], a["type"]) for a in inline["attachments"]],
                         [("attachment-1.png", "image/png")])

    # ---- threading ----

    def test_reply_threads_into_its_case(self):
        first, first_id = make_message("冰箱不制冷", "新买的冰箱第二天就不制冷了。")
        cid, _ = self.deliver_ok(first)
        before = self.case_count()
        reply, reply_id = make_message("Re: 冰箱不制冷", "补充：型号 BCD-520。",
                                       headers=["In-Reply-To: <%s>" % first_id,
                                                "References: <%s>" % first_id])
        cid2, replies = self.deliver_ok(reply)
        self.assertEqual(cid2, cid)
        self.assertIn("reply recorded on case %d" % cid, replies[0][1])
        # a reply to the reply (only References to the reply) lands there too
        third, _ = make_message("Re: Re: 冰箱不制冷", "第三封。",
                                headers=["References: <unknown@x> <%s>" % reply_id])
        self.assertEqual(self.deliver_ok(third)[0], cid)
        self.assertEqual(self.case_count(), before)
        c = self.case(cid)
        messages = [e for e in c["events"] if e["type"] == "message"]
        self.assertEqual([m["note"] for m in messages], ["补充：型号 BCD-520。", "第三封。"])
        self.assertEqual(messages[0]["data"]["message_id"], reply_id)
        self.assertEqual(messages[0]["data"]["subject"], "Re: 冰箱不制冷")
        self.assertEqual(messages[0]["data"]["from"], "customer@example.cn")
        # the same reply again: nothing new
        self.assertIn("already delivered", self.lmtp.send(reply)[0][1])
        self.assertEqual(len([e for e in self.case(cid)["events"] if e["type"] == "message"]), 2)

    def test_subject_tag_threads(self):
        first, _ = make_message("洗衣机噪音大", "脱水时噪音很大。")
        cid, _ = self.deliver_ok(first)
        tagged, _ = make_message("回复：[VOC-%d] 洗衣机噪音大" % cid, "已经按说明调平，还是响。")
        cid2, replies = self.deliver_ok(tagged)
        self.assertEqual(cid2, cid)
        self.assertIn("reply recorded", replies[0][1])
        self.assertEqual(self.case(cid)["events"][-1]["note"], "已经按说明调平，还是响。")
        # a tag naming no case: the mail is still kept, as a case of its own
        stray, _ = make_message("[VOC-987654321] 问题", "旧的编号。")
        cid3, replies = self.deliver_ok(stray)
        self.assertNotEqual(cid3, cid)
        self.assertIn("created", replies[0][1])
        self.assertEqual(self.case(cid3)["fields"]["in_reply_to_case"], 987654321)

    def test_redelivery_writes_nothing(self):
        msg, msgid = make_message("重复投递", "同一封邮件投递两次。")
        cid, replies = self.deliver_ok(msg)
        self.assertIn("created", replies[0][1])
        before = self.case_count()
        cid2, replies = self.deliver_ok(msg)
        self.assertEqual(cid2, cid)
        self.assertIn("already delivered (case %d)" % cid, replies[0][1])
        self.assertEqual(self.case_count(), before)
        self.assertEqual(self.case(cid)["external_id"], msgid)
        # no Message-ID at all: the content identifies the re-delivery
        bare = b"From: a@example.cn\r\nSubject: no id\r\n\r\nbody without id\r\n"
        cid3, _ = self.deliver_ok(bare)
        self.assertEqual(self.deliver_ok(bare)[0], cid3)

    def test_bounce_and_auto_reply_never_open_a_case(self):
        first, first_id = make_message("空调漏水", "室内机漏水。")
        cid, _ = self.deliver_ok(first)
        before = self.case_count()
        bounce = fixture("bounce_dsn.eml").replace(b"20261123091455.1A2B3C@example.cn",
                                                   first_id.encode())
        bounce = bounce.replace(b"20261124020500.BOUNCE1", ("b-%s" % first_id).encode())
        replies = self.lmtp.send(bounce, sender="")
        self.assertEqual(replies[0][0], 250, replies)
        self.assertIn("bounce recorded on case %d" % cid, replies[0][1])
        auto, _ = make_message("自动回复: 休假中", "我正在休假。",
                               headers=["In-Reply-To: <%s>" % first_id,
                                        "Auto-Submitted: auto-replied"])
        self.assertIn("auto-reply recorded on case %d" % cid, self.lmtp.send(auto)[0][1])
        notes = [e for e in self.case(cid)["events"] if e["type"] == "note"]
        self.assertEqual([n["data"]["kind"] for n in notes], ["bounce", "auto_reply"])
        self.assertIn("User unknown", notes[0]["note"])
        # answering nothing known: logged, accepted, no case
        mark = self.v.log_mark()
        lonely, _ = make_message("Out of office", "away", headers=["Precedence: bulk"])
        replies = self.lmtp.send(lonely)
        self.assertEqual(replies[0], (250, "2.0.0 <feedback@example.com> auto-reply logged, "
                                           "no case"))
        self.v.wait_log(r"auto-reply without a case, not recorded", since=mark)
        null_sender, _ = make_message("Delivery failure", "bounced")
        self.assertIn("logged, no case", self.lmtp.send(null_sender, sender="")[0][1])
        self.assertEqual(self.case_count(), before)

    # ---- refusals and reply codes ----

    def test_reply_codes(self):
        c = self.lmtp.c
        # SIZE over the limit at MAIL
        code, msg = c.docmd("MAIL FROM:<a@example.cn> SIZE=3000000")
        self.assertEqual((code, msg[:5]), (552, b"5.3.4"))
        # over the limit in DATA: read to the end, refused per recipient
        big = b"From: a@example.cn\r\nSubject: big\r\n\r\n" + b"x" * 76 * 30000 + b"\r\n"
        replies = self.lmtp.send(big, ("feedback@example.com", "voc@example.com"))
        self.assertEqual([r[0] for r in replies], [552, 552], replies)
        self.assertIn("5.3.4", replies[0][1])
        # broken MIME, with the reason
        for name, why in (("broken_unterminated.eml", "boundary"),
                          ("broken_garbage.eml", "header")):
            replies = self.lmtp.send(fixture(name), ("feedback@example.com", "voc@example.com"))
            self.assertEqual([r[0] for r in replies], [554, 554], replies)
            self.assertTrue(replies[0][1].startswith("5.6.0"), replies)
            self.assertIn(why, replies[0][1])
        # MIME bombs: 10,000 parts; nesting 1,000
        wide = [b"From: bomb@example.com\r\nSubject: wide\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"]
        wide += [b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"] * 10000
        wide.append(b"--b--\r\n")
        t0 = time.monotonic()
        replies = self.lmtp.send(b"".join(wide))
        self.assertEqual(replies[0][0], 554, replies)
        self.assertIn("MIME parts", replies[0][1])
        deep = [b"From: bomb@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
        for i in range(1000):
            deep.append(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i))
        deep.append(b"Content-Type: text/plain\r\n\r\ndeep\r\n")
        deep += [b"--b%d--\r\n" % i for i in reversed(range(1000))]
        replies = self.lmtp.send(b"".join(deep))
        self.assertEqual(replies[0][0], 554, replies)
        self.assertLess(time.monotonic() - t0, 10)
        # attachments: too many (limit 5), too large (limit 512 KB)
        parts = [b"From: a@example.cn\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: multipart/mixed; boundary=m\r\n\r\n"]
        for i in range(6):
            parts.append(b"--m\r\nContent-Type: image/png\r\nContent-Disposition: attachment; "
                         b"filename=p%d.png\r\n\r\npng%d\r\n" % (i, i))
        parts.append(b"--m--\r\n")
        replies = self.lmtp.send(b"".join(parts))
        self.assertEqual(replies[0][0], 554, replies)
        self.assertIn("more than 5 attachments", replies[0][1])
        huge = base64.encodebytes(os.urandom(600 * 1024)).replace(b"\n", b"\r\n")
        replies = self.lmtp.send(b"From: a@example.cn\r\nSubject: huge\r\nMIME-Version: 1.0\r\n"
                                 b"Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64"
                                 b"\r\n\r\n" + huge)
        self.assertEqual(replies[0][0], 552, replies)
        # protocol errors
        self.assertEqual(c.docmd("HELO x")[0], 500)
        self.assertEqual(c.docmd("DATA")[0], 503)
        self.assertEqual(c.docmd("RCPT TO:<a@b>")[0], 503)
        self.assertEqual(c.docmd("MAIL FROM:<a@b> XFOO=1")[0], 555)
        # and the connection still works
        cid, _ = self.deliver_ok(make_message("之后正常", "拒绝之后还能正常投递。")[0])
        self.assertGreater(cid, 0)

    def test_attachment_with_a_broken_type_is_kept(self):
        """A Content-Type of 8-bit junk: the attachment is still on the case (as
        application/octet-stream), never silently left off."""
        data = (b"From: a@example.cn\r\nSubject: broken type\r\nMIME-Version: 1.0\r\n"
                b"Message-ID: <broken-type-%d@example.cn>\r\n"
                b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nphoto attached\r\n"
                b"--b\r\nContent-Type: image/\xff\xfejpeg\r\nContent-Transfer-Encoding: base64\r\n"
                b"Content-Disposition: attachment; filename=photo.jpg\r\n\r\n"
                b"/9j/4AAQSkZJRg==\r\n--b--\r\n" % os.getpid())
        cid, _ = self.deliver_ok(data)
        case = self.case(cid)
        self.assertEqual([(a["name"], a["type"]) for a in case["attachments"]],
                         [("photo.jpg", "application/octet-stream")])

    def test_digest_bomb_is_refused(self):
        """multipart/digest parts need no Content-Type line, so the pre-scan does not
        count them; the parsed tree is refused by its size instead."""
        parts = [b"From: bomb@example.com\r\nSubject: digest\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: multipart/digest; boundary=d\r\n\r\n"]
        parts += [b"--d\r\n\r\nSubject: x\r\n\r\nx\r\n"] * 10000
        parts.append(b"--d--\r\n")
        t0 = time.monotonic()
        code, text = self.lmtp.send(b"".join(parts))[0]
        self.assertEqual(code, 554, text)
        self.assertTrue(text.startswith("5.6.0"), text)
        self.assertLess(time.monotonic() - t0, 10)

    def test_pipelining_and_many_messages_per_connection(self):
        m1, _ = make_message("流水线一", "第一封")
        m2, _ = make_message("流水线二", "第二封")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        s.sendall(b"LHLO pipe.test\r\nMAIL FROM:<p@example.cn>\r\nRCPT TO:<a@example.com>\r\n"
                  b"RCPT TO:<b@example.com>\r\nDATA\r\n")
        lines = []
        while not lines or not lines[-1].startswith(b"354"):
            lines.append(f.readline())
        self.assertIn(b"250-PIPELINING\r\n", lines)
        # message 1, then the whole second transaction, in one write
        s.sendall(m1 + b".\r\nMAIL FROM:<p@example.cn>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        replies = [f.readline() for _ in range(5)]
        self.assertTrue(replies[0].startswith(b"250 2.0.0 <a@example.com> case "), replies)
        self.assertTrue(replies[1].startswith(b"250 2.0.0 <b@example.com> case "), replies)
        self.assertEqual(replies[2:4], [b"250 2.1.0 sender OK\r\n", b"250 2.1.5 recipient OK\r\n"])
        self.assertTrue(replies[4].startswith(b"354"), replies)
        s.sendall(m2 + b".\r\nQUIT\r\n")
        last = [f.readline(), f.readline()]
        self.assertTrue(last[0].startswith(b"250 2.0.0 <a@example.com> case "), last)
        self.assertTrue(last[1].startswith(b"221 "), last)
        self.assertEqual(f.readline(), b"")  # closed by the server
        s.close()
        # many messages on one smtplib connection
        ids = set()
        for i in range(25):
            ids.add(self.deliver_ok(make_message("批量 %d" % i, "第 %d 封" % i)[0])[0])
        self.assertEqual(len(ids), 25)

    def test_ack_survives_kill9(self):
        """A 250 means durable: SIGKILL right after it loses nothing."""
        with Vocd(start=False) as v:
            v.write_config(plugin_yaml(os.path.join(v.dir, "Maildir")))
            v.start()
            port = int(v.wait_log(LMTP_RE).group(1))
            client = Lmtp(port)
            ids = [case_id_of(client.send(make_message("断电测试 %d" % i, "内容 %d" % i)[0])[0][1])
                   for i in range(10)]
            v.kill9()
            v.start()
            client.c.close()
            for cid in ids:
                status, _, body = v.request("GET", "/api/v1/cases/%d" % cid)
                self.assertEqual(status, 200, (cid, body))

    def test_writer_backed_up_is_451(self):
        """The writer's queue is full (queue_limit 1, a profile that takes half a second per
        case): a delivery is answered 451 4.3.2 at once and gets through when retried."""
        with Vocd(start=False) as v:
            profile = os.path.join(v.dir, "slow.lua")
            with open(profile, "w") as f:
                f.write("return { name = 'slow', classify = function(case)\n"
                        "  local x = 0\n  for i = 1, 50000000 do x = x + i end\n"
                        "  return { kind = 'complaint' } end }\n")
            v.write_config("profile: %s\nrules: { max_instructions: 1000000000 }\n"
                           "writer: { queue_limit: 1 }\n%s"
                           % (profile, plugin_yaml(os.path.join(v.dir, "Maildir"))))
            v.start()
            port = int(v.wait_log(LMTP_RE).group(1))
            messages = [make_message("排队 %d" % i, "写入队列已满时的第 %d 封" % i)[0]
                        for i in range(6)]
            replies = [None] * len(messages)

            def one(i):
                client = Lmtp(port)
                try:
                    replies[i] = client.send(messages[i])[0]
                finally:
                    client.close()
            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(messages))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            busy = [i for i, r in enumerate(replies) if r[0] == 451]
            self.assertTrue(busy, replies)
            for i, (code, text) in enumerate(replies):
                self.assertIn(code, (250, 451), replies)
                if code == 451:
                    self.assertTrue(text.startswith("4.3.2"), text)
                    self.assertIn("busy", text)
            # The MTA retries later: every message gets its case, none twice.
            client = Lmtp(port)
            for i in busy:
                self.assertEqual(client.send(messages[i])[0][0], 250)
            client.close()
            status, _, body = v.request("GET", "/api/v1/cases?channel=email&limit=100")
            self.assertEqual(len(body["cases"]), len(messages))

    def test_store_full_is_a_temporary_failure(self):
        with Vocd(start=False) as v:
            v.write_config({"store": {"map_size": "1MiB", "max_map_size": "2MiB"}})
            with open(v.config_path, encoding="utf-8") as f:
                text = f.read()
            v.write_config(raw=text + plugin_yaml(os.path.join(v.dir, "Maildir"),
                                                  max_text_size="512KiB"))
            v.start()
            port = int(v.wait_log(LMTP_RE).group(1))
            client = Lmtp(port)
            codes = []
            for i in range(12):
                body = ("满" * 60000) + str(i)  # 180 KB of text
                codes.append(client.send(make_message("大文本 %d" % i, body)[0])[0])
                if codes[-1][0] != 250:
                    break
            self.assertEqual(codes[0][0], 250, codes)
            self.assertEqual(codes[-1][0], 452, codes)
            self.assertTrue(codes[-1][1].startswith("4.3.1"), codes)
            client.close()

    def test_sighup_changes_limits(self):
        with Vocd(start=False) as v:
            maildir = os.path.join(v.dir, "Maildir")
            v.write_config(plugin_yaml(maildir, max_message_size="1MB"))
            v.start()
            port = int(v.wait_log(LMTP_RE).group(1))
            client = Lmtp(port)
            self.assertEqual(client.c.esmtp_features["size"], "1000000")
            client.close()
            mark = v.log_mark()
            v.write_config(plugin_yaml(maildir, max_message_size="2MB"))
            v.sighup()
            v.wait_log(r"reloaded plugin=email", since=mark)
            client = Lmtp(port)  # same listener, new limit
            self.assertEqual(client.c.esmtp_features["size"], "2000000")
            self.assertEqual(client.send(make_message("重载之后", "仍然可以投递。")[0])[0][0], 250)
            client.close()

    # ---- Maildir ----

    def wait_for(self, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.05)
        self.fail("timed out")

    def maildir_put(self, name, data):
        """Deliver the way Maildir writers do: write in tmp/, rename into new/."""
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.maildir, "new", name))

    def test_maildir_new_to_cur_after_durable(self):
        msg, msgid = make_message("Maildir 投递", "从 fetchmail 收到的邮件。")
        name = "%d.M%dP%d.it" % (time.time(), _counter[0], os.getpid())
        self.maildir_put(name, msg)
        cur = os.path.join(self.maildir, "cur", name + ":2,S")
        self.wait_for(lambda: os.path.exists(cur))
        self.assertFalse(os.path.exists(os.path.join(self.maildir, "new", name)))
        # once in cur/, the case is there
        status, _, body = self.v.request("GET", "/api/v1/cases?channel=email&q=fetchmail")
        self.assertEqual(status, 200)
        self.assertEqual([c["subject"] for c in body["cases"]], ["Maildir 投递"])
        # broken mail goes to rejected/ with the reason beside it
        bad = "%d.bad%d.it" % (time.time(), os.getpid())
        self.maildir_put(bad, fixture("broken_unterminated.eml"))
        reason = os.path.join(self.maildir, "rejected", bad + ".reason")
        self.wait_for(lambda: os.path.exists(reason))
        with open(reason) as f:
            self.assertIn("554 5.6.0", f.read())
        # the same message again (a re-fetch): no second case
        before = self.case_count()
        again = name + "-again"
        self.maildir_put(again, msg)
        self.wait_for(lambda: os.path.exists(os.path.join(self.maildir, "cur", again + ":2,S")))
        self.assertEqual(self.case_count(), before)

    # ---- real clients ----

    def test_swaks(self):
        swaks = shutil.which("swaks")
        if not swaks:
            self.skipTest("swaks is not installed (apt-get install swaks)")
        subject = "=?UTF-8?B?%s?=" % base64.b64encode("热水器打不着火".encode()).decode()
        with tempfile.NamedTemporaryFile(suffix=".jpg") as photo:
            photo.write(b"\xff\xd8\xff\xe0swaks-photo" + os.urandom(64))
            photo.flush()
            cp = subprocess.run(
                [swaks, "--protocol", "LMTP", "--server", "127.0.0.1", "--port", str(self.port),
                 "--helo", "swaks.test", "--from", "swaks@example.cn",
                 "--to", "feedback@example.com,voc@example.com",
                 "--header", "Subject: %s" % subject,
                 "--body", "热水器点火失败，显示 E1。", "--attach-type", "image/jpeg",
                 "--attach-name", "现场照片.jpg", "--attach", "@" + photo.name],
                capture_output=True, timeout=60)
        out = cp.stdout.decode("utf-8", "replace")
        self.assertEqual(cp.returncode, 0, out + cp.stderr.decode("utf-8", "replace"))
        created = re.findall(r"<-\s+250 2\.0\.0 <(\S+)> case (\d+) created", out)
        self.assertEqual([r[0] for r in created], ["feedback@example.com", "voc@example.com"],
                         out)
        c = self.case(int(created[0][1]))
        self.assertEqual(c["subject"], "热水器打不着火")
        self.assertIn("热水器点火失败，显示 E1。", c["text"])
        self.assertEqual([(a["name"], a["type"]) for a in c["attachments"]],
                         [("现场照片.jpg", "image/jpeg")])


ACK_PROFILE = """
return {
  name = "ack-test",
  classify = function(case) return { kind = "complaint", category = "产品质量" } end,
  clocks = {
    { name = "classify", start = "received", stop = "classified", target = "1h" },
    { name = "respond", start = "received", stop = "resolved", target = "24h" },
  },
}
"""


def metric_value(v, name):
    status, _, body = v.request("GET", "/metrics", token=None)
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


class Acknowledgement(unittest.TestCase):
    """docs/email.md, "Acknowledgement mail": a message that opens a case is answered once,
    to its sender, with [VOC-<id>] and the due time of the profile's running clock."""

    def start_vocd(self, sink, **ack):
        v = Vocd(start=False)
        profile = os.path.join(v.dir, "ack.lua")
        with open(profile, "w", encoding="utf-8") as f:
            f.write(ACK_PROFILE)
        ack.setdefault("notifier", "customer-mail")
        v.write_config({
            "profile": profile, "plugin_dir": PLUGIN_DIR,
            "notifiers": [{"name": "customer-mail", "type": "email",
                           "smtp": "smtp://127.0.0.1:%d" % sink.port,
                           "from": "feedback@example.com", "to": ["archive@example.com"]}],
            "plugins": [{"name": "email", "lmtp": "127.0.0.1:0", "acknowledge": ack}]})
        return v

    def wait_mails(self, sink, n, timeout=20):
        deadline = time.monotonic() + timeout
        while len(sink.received()) < n:
            self.assertLess(time.monotonic(), deadline, "no acknowledgement arrived")
            time.sleep(0.05)
        return sink.received()

    def test_new_case_is_acknowledged_once_with_its_due_time(self):
        sink = SmtpSink()
        self.addCleanup(sink.close)
        with self.start_vocd(sink, time_zone="Asia/Shanghai") as v:
            v.start()
            client = Lmtp(int(v.wait_log(LMTP_RE).group(1)))
            self.addCleanup(client.close)
            msg, msgid = make_message("电饭煲坏了", "用了三天就不加热了。")
            code, text = client.send(msg)[0]
            self.assertEqual(code, 250, text)
            cid = case_id_of(text)
            v.wait_log(r"acknowledgement queued case=%d to=customer@example\.cn" % cid)
            mails = self.wait_mails(sink, 1)
            ack = mails[0]
            # to the sender only, not to the notifier's own list
            self.assertEqual(ack["rcpt"], ["<customer@example.cn>"])
            self.assertEqual(ack["from"], "<feedback@example.com>")
            m = email.message_from_bytes(ack["data"], policy=email.policy.default)
            self.assertEqual(m["Subject"], "[VOC-%d] Re: 电饭煲坏了" % cid)
            self.assertEqual(m["To"], "customer@example.cn")
            self.assertEqual(m["In-Reply-To"], "<%s>" % msgid)
            self.assertEqual(m["Auto-Submitted"], "auto-generated")
            body = m.get_content()
            # the due time of "respond" (classify stopped when the profile classified it)
            _, _, case = v.request("GET", "/api/v1/cases/%d" % cid)
            clocks = {c["name"]: c for c in case["clocks"]}
            self.assertEqual(clocks["classify"]["status"], "met")
            due_utc = time.strptime(clocks["respond"]["due_at"][:19], "%Y-%m-%dT%H:%M:%S")
            due_local = time.strftime("%Y-%m-%d %H:%M",
                                      time.gmtime(calendar.timegm(due_utc) + 8 * 3600))
            self.assertIn("受理编号 %d" % cid, body)
            self.assertIn("我们将在 %s (UTC+08:00) 之前答复您" % due_local, body)
            self.assertIn("[VOC-%d]" % cid, body)

            sent = 'vocd_notifications_total{notifier="customer-mail",outcome="sent"}'
            deadline = time.monotonic() + 20
            while metric_value(v, sent) != 1 or metric_value(v, "vocd_notifications_pending"):
                self.assertLess(time.monotonic(), deadline, "the delivery is not recorded")
                time.sleep(0.05)
            # The same message again: already delivered, nothing queued a second time (the
            # counter moves before the 250 goes out).
            code, text = client.send(msg)[0]
            self.assertEqual((code, case_id_of(text)), (250, cid), text)
            self.assertIn("already delivered", text)
            self.assertEqual(metric_value(v, "vocd_plugin_email_acknowledgements_total"), 1)
            # The customer answers the acknowledgement: a message on the case, no new mail.
            reply = ("From: customer@example.cn\r\nTo: feedback@example.com\r\n"
                     "Subject: Re: %s\r\nMessage-ID: <answer-%d@example.cn>\r\n"
                     "In-Reply-To: %s\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=UTF-8\r\n\r\n还是不加热\r\n"
                     % (b64word(m["Subject"]), cid, m["Message-ID"])).encode()
            code, text = client.send(reply)[0]
            self.assertEqual(code, 250, text)
            self.assertIn("reply recorded on case %d" % cid, text)
            client.send(reply)  # a re-delivered reply is no reason for a mail either
            time.sleep(0.5)
            self.assertEqual(len(sink.received()), 1)
            self.assertEqual(metric_value(v, "vocd_plugin_email_acknowledgements_total"), 1)
            self.assertEqual(metric_value(v, sent), 1)
            self.assertEqual(metric_value(v, "vocd_notifications_pending"), 0)

    def test_without_a_running_clock_the_mail_promises_no_time(self):
        sink = SmtpSink()
        self.addCleanup(sink.close)
        with self.start_vocd(sink, clock="plan", subject="收到：{subject}",
                             text_without_due="第 {case} 号，{name}，无时限。") as v:
            v.start()
            client = Lmtp(int(v.wait_log(LMTP_RE).group(1)))
            self.addCleanup(client.close)
            code, text = client.send(make_message("建议", "希望增加颜色。")[0])[0]
            self.assertEqual(code, 250, text)
            cid = case_id_of(text)
            m = email.message_from_bytes(self.wait_mails(sink, 1)[0]["data"],
                                         policy=email.policy.default)
            self.assertEqual(m["Subject"], "[VOC-%d] 收到：建议" % cid)
            self.assertEqual(m.get_content().strip(), "第 %d 号，客户，无时限。" % cid)

    def test_bad_settings_stop_startup(self):
        sink = SmtpSink()
        self.addCleanup(sink.close)
        with self.start_vocd(sink, time_zone="Mars/Olympus_Mons") as v:
            cp = v.run(timeout=60)
            self.assertEqual(cp.returncode, 1, cp.stderr)
            self.assertIn("plugins.email.acknowledge.time_zone: unknown time zone "
                          "'Mars/Olympus_Mons'", cp.stderr)


class FailedStart(unittest.TestCase):
    def test_optional_email_whose_maildir_fails_closes_its_listener(self):
        """start() opens the LMTP listener, then the Maildir cannot be made (a file is in the
        way): the plugin is skipped, its listener closed before its state is freed, and the
        daemon goes on serving."""
        with Vocd(start=False) as v:
            blocker = os.path.join(v.dir, "not-a-maildir")
            with open(blocker, "w") as f:
                f.write("a file, not a folder\n")
            v.write_config(plugin_yaml(blocker, optional="true"))
            v.start()
            log = v.log()
            port = int(re.search(LMTP_RE, log).group(1))
            self.assertRegex(log, r"cannot create the Maildir .*not-a-maildir")
            self.assertRegex(log, r"plugin 'email': start failed .*\(optional: skipped\)")
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            status, _, _ = v.request("GET", "/healthz", token=None)
            self.assertEqual(status, 200)


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PostfixDelivers(unittest.TestCase):
    """A private Postfix instance on 127.0.0.1 relays feedback@example.com to vocd over
    LMTP (the setup docs/email.md describes)."""

    def setUp(self):
        if not shutil.which("postfix") or not os.path.exists("/usr/lib/postfix/sbin/master"):
            self.skipTest("postfix is not installed (apt-get install postfix)")
        if os.geteuid() != 0:
            self.skipTest("a private Postfix instance needs root")

    def test_postfix_lmtp_transport(self):
        v = Vocd(start=False)
        pfx = tempfile.mkdtemp(prefix="vocd-postfix-")
        os.chmod(pfx, 0o755)  # the postfix user walks into its queue below
        conf = os.path.join(pfx, "conf")
        started = False
        try:
            v.write_config(plugin_yaml(os.path.join(v.dir, "Maildir")))
            v.start()
            lmtp_port = int(v.wait_log(LMTP_RE).group(1))
            smtp_port = free_port()
            os.makedirs(conf)
            os.makedirs(os.path.join(pfx, "queue"))
            os.makedirs(os.path.join(pfx, "data"))
            shutil.chown(os.path.join(pfx, "data"), user="postfix")
            master = []
            # /etc/postfix/master.cf is absent when the package was installed unconfigured
            # ("No configuration"): the packaged original serves as well
            master_cf = "/etc/postfix/master.cf"
            if not os.path.exists(master_cf):
                master_cf = "/usr/share/postfix/master.cf.dist"
            with open(master_cf) as f:
                for line in f:
                    fields = line.split()
                    if line[:1].isspace() or line.startswith("#") or len(fields) < 8:
                        master.append(line)
                        continue
                    if fields[0] == "smtp" and fields[1] == "inet":
                        fields[0] = "127.0.0.1:%d" % smtp_port
                    fields[4] = "n"  # no chroot: nothing to copy into the queue folder
                    master.append(" ".join(fields) + "\n")
            with open(os.path.join(conf, "master.cf"), "w") as f:
                f.writelines(master)
            with open(os.path.join(conf, "main.cf"), "w") as f:
                f.write("\n".join([
                    "compatibility_level = 3.6",
                    "queue_directory = %s/queue" % pfx,
                    "data_directory = %s/data" % pfx,
                    "maillog_file_prefixes = %s" % pfx,
                    "maillog_file = %s/maillog" % pfx,
                    "inet_interfaces = loopback-only",
                    "inet_protocols = ipv4",
                    "myhostname = postfix-it.localdomain",
                    "mydestination =",
                    "alias_maps =",
                    "relay_domains = example.com",
                    "mynetworks = 127.0.0.0/8",
                    "transport_maps = inline:{ example.com=lmtp:inet:127.0.0.1:%d }" % lmtp_port,
                    "lmtp_host_lookup = native",
                    "smtp_host_lookup = native",
                    ""]))
            cp = subprocess.run(["postfix", "-c", conf, "start"], capture_output=True,
                                timeout=60)
            if cp.returncode != 0:
                log = ""
                if os.path.exists(os.path.join(pfx, "maillog")):
                    log = read_text(os.path.join(pfx, "maillog"))
                self.skipTest("this machine cannot run a private Postfix: %s %s" % (
                    cp.stderr.decode(errors="replace"), log[-500:]))
            started = True
            deadline = time.monotonic() + 20
            while True:
                try:
                    smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            msg, msgid = make_message("经 Postfix 投递", "通过真实的 MTA 投递到 vocd。", charset="GB2312")
            smtp.sendmail("customer@example.cn", ["feedback@example.com"], msg)
            smtp.quit()
            deadline = time.monotonic() + 30
            case = None
            while time.monotonic() < deadline and not case:
                status, _, body = v.request("GET", "/api/v1/cases?channel=email")
                if status == 200 and body["cases"]:
                    case = body["cases"][0]
                else:
                    time.sleep(0.1)
            maillog = read_text(os.path.join(pfx, "maillog"))
            self.assertIsNotNone(case, "no case after 30 s; Postfix log:\n" + maillog[-3000:])
            self.assertEqual(case["subject"], "经 Postfix 投递")
            full = v.request("GET", "/api/v1/cases/%d" % case["id"])[2]
            self.assertEqual(full["external_id"], msgid)
            self.assertEqual(full["text"], "通过真实的 MTA 投递到 vocd。")
            deadline = time.monotonic() + 10
            while "status=sent (250 2.0.0 <feedback@example.com> case" not in maillog:
                self.assertLess(time.monotonic(), deadline, maillog[-3000:])
                time.sleep(0.1)
                maillog = read_text(os.path.join(pfx, "maillog"))
            v.close()
        except BaseException:
            v.close(failed=True)
            raise
        finally:
            if started:
                subprocess.run(["postfix", "-c", conf, "stop"], capture_output=True, timeout=60)
                # postfix stop returns before master has exited
                deadline = time.monotonic() + 20
                pid_file = os.path.join(pfx, "queue", "pid", "master.pid")
                while os.path.exists(pid_file) and time.monotonic() < deadline:
                    time.sleep(0.1)
            shutil.rmtree(pfx, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)

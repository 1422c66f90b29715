"""hotline_csv plugin, black box: CSV files dropped into the spool of a running vocd become
cases, one per good row; bad rows land in rejects/ with their line number and reason; files
that cannot be read land in failed/ with a .reason file; and a big file interrupted three
times (kill -9, SIGTERM, kill -9) still ends with exactly one case per good row and every bad
row once in rejects/.

Cases are checked through the API only. Every generated row has its own 来电时间 (call time),
so the case list (received_at) tells exactly which rows became cases, and how often.

VOCD_CSV_ROWS sets the size of the big file of the kill -9 test: 200000 by default, 3000 for a
sanitizer build (there every write costs the core's LMDB child transaction an mmap'ed and
zeroed 3 MB, which makes vocd a few hundred cases per second)."""

import csv
import datetime
import io
import json
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocd_bin  # noqa: E402

BUILD_DIR = os.environ.get("VOC_BUILD_DIR") or os.path.dirname(os.path.dirname(vocd_bin()))
PLUGIN_DIR = os.path.join(BUILD_DIR, "plugins")


def sanitized(binary):
    with open(binary, "rb") as f:
        return b"libasan.so" in f.read()


SANITIZED = sanitized(vocd_bin())
BIG_ROWS = int(os.environ.get("VOCD_CSV_ROWS", "3000" if SANITIZED else "200000"))
IN_FLIGHT = 200 if SANITIZED else 4000

COLUMNS = {
    "received_at": "来电时间",
    "customer.name": "客户姓名",
    "customer.contact": "联系电话",
    "customer.region": "所在地区",
    "product.model": "产品型号",
    "text": "问题描述",
    "expected": "客户诉求",
    "external_id": "工单号",
}
HEADER = ["工单号", "来电时间", "客户姓名", "联系电话", "所在地区", "产品型号", "问题描述",
          "客户诉求", "坐席"]
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
BASE = datetime.datetime(2025, 1, 1, 0, 0, tzinfo=SHANGHAI)


def plugin_yaml(spool, **options):
    opts = {"spool": spool, "settle_time": "1s", "rescan_interval": "2s",
            "columns": COLUMNS, "time_format": ["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"],
            "time_zone": "Asia/Shanghai"}
    opts.update(options)
    lines = ["plugin_dir: %s" % json.dumps(PLUGIN_DIR), "plugins:", "  - name: hotline_csv"]
    for key, value in opts.items():
        lines.append("    %s: %s" % (key, json.dumps(value, ensure_ascii=False)))
    return "\n".join(lines) + "\n"


def csv_bytes(rows, encoding, bom=b"", newline="\r\n"):
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return bom + out.getvalue().encode(encoding)


def utc(local_text):
    """"2025-01-01 08:00" (Asia/Shanghai) -> the API's "2025-01-01T00:00:00.000Z"."""
    dt = datetime.datetime.strptime(local_text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Spool:
    def __init__(self, vocd):
        self.v = vocd
        self.dir = os.path.join(vocd.dir, "spool")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def drop(self, name, data):
        """Write beside the spool and rename in: complete at once."""
        tmp = os.path.join(self.v.dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self.path(name))

    def write_in_place(self, name, data):
        """Write straight into the spool, in two parts: taken only after settle_time."""
        with open(self.path(name), "wb") as f:
            f.write(data[:len(data) // 2])
            f.flush()
            time.sleep(0.3)
            f.write(data[len(data) // 2:])

    def wait_done(self, name, since=0, timeout=60):
        m = self.v.wait_log(r"INFO plugin/hotline_csv: file done file=%s rows=(\d+) "
                            r"cases=(\d+) new=(\d+) existing=(\d+) rejects=(\d+)"
                            % re.escape(name), since=since, timeout=timeout)
        return dict(zip(("rows", "cases", "new", "existing", "rejects"),
                        (int(x) for x in m.groups())))

    def rejects(self, name):
        with open(self.path("rejects", name), encoding="utf-8-sig", newline="") as f:
            return list(csv.reader(f))


def list_cases(v, **filters):
    """Every case matching the filters (all pages)."""
    out, cursor = [], None
    while True:
        q = dict(filters, limit=1000)
        if cursor:
            q["cursor"] = cursor
        st, _, body = v.request("GET", "/api/v1/cases?" + urllib.parse.urlencode(q), timeout=60)
        assert st == 200, (st, body)
        out.extend(body["cases"])
        cursor = body.get("next_cursor")
        if not cursor:
            return out


def case_count(v):
    st, _, body = v.request("GET", "/api/v1/status")
    assert st == 200, (st, body)
    return body["cases"]


def metric(v, name):
    st, _, body = v.request("GET", "/metrics", token=None)
    m = re.search(r"^%s (\d+)" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


class SpoolCase(unittest.TestCase):
    """A running vocd with the hotline plugin on a fresh spool (self.v, self.spool)."""

    def setUp(self):
        self.v = Vocd(start=False)
        self.spool = Spool(self.v)
        self.v.write_config(plugin_yaml(self.spool.dir))
        self.v.start()

    def tearDown(self):
        self.v.close()


class Files(SpoolCase):
    def test_encodings_rejects_and_done(self):
        sp = self.spool
        # GB18030 without BOM, CRLF: a multi-line description with a comma and a 4-byte
        # character (𠀀 U+20000), and one row of each kind of mistake.
        gb_rows = [HEADER,
                   ["GD-1", "2025-03-05 09:07", "张三", "13800138000", "广东深圳", "KFR-35",
                    "空调不制冷，\r\n外机有异响, 𠀀", "上门维修", "王芳"],
                   ["GD-2", "2025/03/05 10:11:12", "李四", "139", "北京", "X2", "遥控器失灵",
                    "换货", "刘强"],
                   ["GD-3", "下午三点", "王五", "1", "上海", "X3", "漏水", "退款", "刘强"],
                   ["GD-4", "2025-03-05 11:00", "赵六", "2", "上海", "X3", "", "退款", "刘强"],
                   ["GD-5", "2025-03-05 12:00", "钱七"],
                   ["GD-6", "2025-03-05 13:00", "NAME", "3", "上海", "X3", "噪音大", "", ""],
                   ["GD-7", "2025-03-05 14:00", "孙八", "4", "上海", "X3", "显示E4", "", ""]]
        gb = csv_bytes(gb_rows, "gb18030")
        self.assertIn(b"\x95\x32\x82\x36", gb)  # the 4-byte sequence is really there
        gb = gb.replace("NAME".encode(), b"\xff\xfe")  # invalid GB18030 in 客户姓名
        # UTF-8 with a BOM, LF line ends; one row with invalid UTF-8.
        u8_rows = [HEADER,
                   ["U-1", "2025-03-06 09:00", "周九", "5", "杭州", "Y1", "冰箱不冷", "", ""],
                   ["U-2", "2025-03-06 10:00", "吴十", "6", "杭州", "Y1", "BAD", "", ""]]
        u8 = csv_bytes(u8_rows, "utf-8", bom=b"\xef\xbb\xbf", newline="\n")
        u8 = u8.replace(b"BAD", b"\xe5\xa5")
        # UTF-8 without a BOM, written in place (no rename): waits for settle_time.
        plain = csv_bytes([HEADER, ["P-1", "2025-03-07 09:00", "郑一", "7", "南京", "Z1",
                                    "安装师傅迟到", "道歉", ""]], "utf-8")

        mark = self.v.log_mark()
        sp.drop("gb.csv", gb)
        sp.drop("u8.csv", u8)
        sp.write_in_place("plain.csv", plain)
        self.assertEqual(sp.wait_done("gb.csv", mark),
                         {"rows": 7, "cases": 3, "new": 3, "existing": 0, "rejects": 4})
        self.assertEqual(sp.wait_done("u8.csv", mark)["rejects"], 1)
        self.assertEqual(sp.wait_done("plain.csv", mark)["cases"], 1)
        self.assertRegex(self.v.log(), r"importing file=gb.csv encoding=gb18030")
        self.assertRegex(self.v.log(), r"importing file=u8.csv encoding=utf-8")

        cases = list_cases(self.v, channel="hotline")
        self.assertEqual(len(cases), 5)
        by_time = {c["received_at"]: c["id"] for c in cases}
        st, _, case = self.v.request("GET", "/api/v1/cases/%d" % by_time[utc("2025-03-05 09:07")])
        self.assertEqual(st, 200)
        self.assertEqual(case["external_id"], "GD-1")
        self.assertEqual(case["text"], "空调不制冷，\n外机有异响, 𠀀")
        self.assertEqual(case["customer"], {"name": "张三", "contact": "13800138000",
                                            "region": "广东深圳"})
        self.assertEqual(case["product"], {"model": "KFR-35"})
        self.assertEqual(case["expected"], "上门维修")
        self.assertEqual(case["fields"], {"坐席": "王芳"})
        self.assertIn("2025-03-05T02:11:12.000Z", by_time)  # the second time format

        rej = sp.rejects("gb.csv")
        self.assertEqual(rej[0], ["line", "reason"] + HEADER)
        lines = {int(r[0]): r for r in rej[1:]}
        self.assertEqual(sorted(lines), [5, 6, 7, 8])  # GD-1 spans lines 2-3
        self.assertIn("unparseable time '下午三点'", lines[5][1])
        self.assertEqual(lines[5][2:], gb_rows[3])  # the original row, as UTF-8
        self.assertIn("empty text", lines[6][1])
        self.assertIn("expected 9 columns, found 3", lines[7][1])
        self.assertIn("invalid GB18030 bytes in column 3 '客户姓名'", lines[8][1])
        rej = sp.rejects("u8.csv")
        self.assertEqual([r[0] for r in rej[1:]], ["3"])
        self.assertIn("invalid UTF-8", rej[1][1])

        for name in ("gb.csv", "u8.csv", "plain.csv"):
            self.assertTrue(os.path.exists(sp.path("done", name)), name)
            self.assertFalse(os.path.exists(sp.path(name)), name)
        self.assertEqual([n for n in os.listdir(sp.path("rejects")) if n.startswith(".")], [])

        # The same export dropped again (another name): nothing new, rejects listed again.
        mark = self.v.log_mark()
        sp.drop("gb-again.csv", gb)
        self.assertEqual(sp.wait_done("gb-again.csv", mark),
                         {"rows": 7, "cases": 3, "new": 0, "existing": 3, "rejects": 4})
        self.assertEqual(len(list_cases(self.v, channel="hotline")), 5)
        self.assertEqual(len(sp.rejects("gb-again.csv")), 5)
        # A second file called gb.csv does not overwrite the first in done/.
        mark = self.v.log_mark()
        sp.drop("gb.csv", plain.replace(b"P-1", b"P-2").replace(b"09:00", b"10:00"))
        sp.wait_done("gb.csv", mark)
        self.assertTrue(os.path.exists(sp.path("done", "gb.1.csv")))
        self.assertEqual(len(list_cases(self.v, channel="hotline")), 6)

        self.assertEqual(metric(self.v, "vocd_plugin_hotline_csv_files_total"), 5)
        self.assertEqual(metric(self.v, "vocd_plugin_hotline_csv_rows_total"), 7 + 2 + 1 + 7 + 1)
        self.assertEqual(metric(self.v, "vocd_plugin_hotline_csv_cases_total"), 3 + 1 + 1 + 3 + 1)
        self.assertEqual(metric(self.v, "vocd_plugin_hotline_csv_rejects_total"), 4 + 1 + 4)
        self.assertEqual(metric(self.v, "vocd_plugin_hotline_csv_failed_files_total"), 0)

    def test_failed_files(self):
        sp = self.spool
        mark = self.v.log_mark()
        sp.drop("no-text.csv", csv_bytes([["工单号", "来电时间"], ["1", "2025-03-05 09:07"]],
                                         "gb18030"))
        sp.drop("utf16.csv", "\ufeff工单号,来电时间\r\n".encode("utf-16-le"))
        sp.drop("empty.csv", b"")
        sp.drop("notes.txt", b"not a csv\n")  # does not match *.csv: left alone
        sp.drop(".hidden.csv", b"x\n")         # hidden: left alone
        for name, why in (("no-text.csv", "the header has no column '客户姓名'"),
                          ("utf16.csv", "UTF-16"), ("empty.csv", "empty")):
            self.v.wait_log(r"ERROR plugin/hotline_csv: file failed file=%s " % re.escape(name),
                            since=mark, timeout=30)
            self.assertTrue(os.path.exists(sp.path("failed", name)), name)
            with open(sp.path("failed", name + ".reason"), encoding="utf-8") as f:
                self.assertIn(why, f.read())
        time.sleep(2.5)  # a rescan later, the others are still there, untouched
        self.assertTrue(os.path.exists(sp.path("notes.txt")))
        self.assertTrue(os.path.exists(sp.path(".hidden.csv")))
        self.assertEqual(metric(self.v, "vocd_plugin_hotline_csv_failed_files_total"), 3)
        self.assertEqual(case_count(self.v), 0)


def rows_without_id(n, start=0):
    """Rows whose 工单号 is empty: their cases are identified by the row's content."""
    return [["", (BASE + datetime.timedelta(minutes=start + i)).strftime("%Y-%m-%d %H:%M"),
             "客户%d" % i, "138%08d" % i, "江苏南京", "KFR-1", "第%d号：不制冷" % i, "维修", ""]
            for i in range(n)]


class InPlace(SpoolCase):
    """A producer that writes straight into the spool and pauses longer than settle_time:
    the part read so far is imported, the final row cut by the end of the file waits, and
    the finished file adds only its new rows — no case twice (row ids from the content)."""

    def test_paused_producer_makes_no_duplicates(self):
        sp = self.spool
        rows = rows_without_id(10)
        full = csv_bytes([HEADER] + rows, "gb18030")
        first = csv_bytes([HEADER] + rows[:6], "gb18030")
        # The producer stops in the middle of row 7 (a description cut in half).
        cut = first + full[len(first):len(first) + 30]
        mark = self.v.log_mark()
        with open(sp.path("calls.csv"), "wb") as f:
            f.write(cut)
        m = self.v.wait_log(r"file=calls.csv ends inside a row \(line (\d+) has no line break "
                            r"yet\): 6 rows before it imported", since=mark, timeout=30)
        self.assertEqual(int(m.group(1)), 8)
        self.assertEqual(case_count(self.v), 6)
        self.assertTrue(os.path.exists(sp.path("calls.csv")))  # still in the spool
        # ... and finishes the file after the pause.
        with open(sp.path("calls.csv"), "ab") as f:
            f.write(full[len(cut):])
        self.assertEqual(sp.wait_done("calls.csv", mark),
                         {"rows": 10, "cases": 10, "new": 4, "existing": 6, "rejects": 0})
        cases = list_cases(self.v, channel="hotline")
        self.assertEqual(len(cases), 10)
        self.assertEqual(len({c["received_at"] for c in cases}), 10)
        # The same rows in another file (yesterday's export with today's appended): only the
        # new rows are new.
        more = csv_bytes([HEADER] + rows + rows_without_id(3, start=100), "gb18030")
        mark = self.v.log_mark()
        sp.drop("calls-full.csv", more)
        self.assertEqual(sp.wait_done("calls-full.csv", mark),
                         {"rows": 13, "cases": 13, "new": 3, "existing": 10, "rejects": 0})
        self.assertEqual(case_count(self.v), 13)

    def test_identical_rows_stay_apart(self):
        """Two identical rows in one file are two calls: two cases, and the file dropped
        again makes none."""
        sp = self.spool
        row = rows_without_id(1)[0]
        data = csv_bytes([HEADER, row, rows_without_id(2)[1], row], "utf-8")
        mark = self.v.log_mark()
        sp.drop("twice.csv", data)
        self.assertEqual(sp.wait_done("twice.csv", mark)["new"], 3)
        mark = self.v.log_mark()
        sp.drop("twice-again.csv", data)
        self.assertEqual(sp.wait_done("twice-again.csv", mark),
                         {"rows": 3, "cases": 3, "new": 0, "existing": 3, "rejects": 0})
        self.assertEqual(case_count(self.v), 3)

    def test_file_without_a_final_line_break(self):
        """Written in place: taken whole once it has stayed as it is for another
        settle_time. Renamed in: complete at once."""
        sp = self.spool
        data = csv_bytes([HEADER] + rows_without_id(3), "utf-8").rstrip(b"\r\n")
        mark = self.v.log_mark()
        with open(sp.path("tail.csv"), "wb") as f:
            f.write(data)
        self.v.wait_log(r"file=tail.csv ends inside a row", since=mark, timeout=30)
        self.assertEqual(sp.wait_done("tail.csv", mark),
                         {"rows": 3, "cases": 3, "new": 1, "existing": 2, "rejects": 0})
        mark = self.v.log_mark()
        sp.drop("renamed.csv", csv_bytes([HEADER] + rows_without_id(2, start=50),
                                         "utf-8").rstrip(b"\r\n"))
        self.assertEqual(sp.wait_done("renamed.csv", mark)["new"], 2)
        self.assertNotRegex(self.v.log()[mark:], r"file=renamed.csv ends inside a row")
        self.assertEqual(case_count(self.v), 5)
        # An unclosed quote at the end of a finished file is still a reject, once.
        mark = self.v.log_mark()
        sp.drop("open-quote.csv", csv_bytes([HEADER] + rows_without_id(1, start=70), "utf-8") +
                b'"",2025-01-02 00:00,x,1,y,z,"never closed')
        self.assertEqual(sp.wait_done("open-quote.csv", mark)["rejects"], 1)


class Delimiter(unittest.TestCase):
    def test_delimiter_that_splits_gb18030_characters_is_refused(self):
        for encoding in ("auto", "gb18030"):
            with self.subTest(encoding=encoding):
                with Vocd(start=False) as v:
                    v.write_config(plugin_yaml(os.path.join(v.dir, "spool"), delimiter="|",
                                               encoding=encoding))
                    cp = v.run(timeout=60)
                    self.assertEqual(cp.returncode, 1, cp.stderr)
                    self.assertRegex(cp.stderr, r"plugins.hotline_csv.delimiter: '\|' \(0x7C\) "
                                                r"cannot be used with encoding: %s: .*second byte "
                                                r"of GB18030" % encoding)
                    self.assertRegex(cp.stderr, r"vocd\.yaml:\d+: plugin 'hotline_csv': init "
                                                r"failed")

    def test_pipe_is_fine_for_utf8_files(self):
        v = Vocd(start=False)
        try:
            sp = Spool(v)
            v.write_config(plugin_yaml(sp.dir, delimiter="|", encoding="utf-8"))
            v.start()
            out = io.StringIO()
            csv.writer(out, delimiter="|", lineterminator="\r\n").writerows(
                [HEADER] + rows_without_id(2))
            mark = v.log_mark()
            sp.drop("pipes.csv", out.getvalue().encode("utf-8"))
            self.assertEqual(sp.wait_done("pipes.csv", mark)["new"], 2)
            v.close()
        except BaseException:
            v.close(failed=True)
            raise


class Replaced(unittest.TestCase):
    def test_file_replaced_while_importing(self):
        """A new export renamed over the file being imported: the first is still imported to
        its end (the plugin reads its own open file), the new one is imported after it, and
        neither is moved away unread."""
        v = Vocd(start=False)
        failed = True
        try:
            sp = Spool(v)
            v.write_config(plugin_yaml(sp.dir, max_in_flight=200))
            v.start()
            n = 1500 if SANITIZED else 20000
            data, good, bad = big_file(n)
            mark = v.log_mark()
            sp.drop("calls.csv", data)
            v.wait_log(r"importing file=calls.csv", since=mark, timeout=30)
            deadline = time.monotonic() + 60
            while case_count(v) == 0:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            second = csv_bytes([HEADER, ["R-1", "2030-01-01 08:00", "新", "1", "京", "M",
                                         "替换后的文件", "", ""]], "utf-8")
            sp.drop("calls.csv", second)
            first = sp.wait_done("calls.csv", mark, timeout=120)
            self.assertEqual(first["cases"], len(good))
            self.assertEqual(first["rejects"], len(bad))
            self.assertRegex(v.log(), r"calls.csv was replaced by another file")
            # The replacement is imported next.
            m = v.wait_log(r"file done file=calls.csv rows=1 cases=1 .*moved_to=(\S+)",
                           since=mark, timeout=60)
            with open(m.group(1), "rb") as f:
                self.assertEqual(f.read(), second)
            self.assertEqual(case_count(v), len(good) + 1)
            failed = False
        finally:
            v.close(failed=failed)


def big_file(n):
    """n data rows in GB18030 with CRLF, plus the truth: the call time of every good row and
    the first line number of every bad one. Every 10th description spans two lines."""
    good, bad = set(), {}
    lines = [",".join(HEADER)]
    line_no = 2
    for i in range(n):
        when = (BASE + datetime.timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M")
        text = "第%d号来电：空调不制冷,外机异响" % i
        if i % 10 == 3:
            text += "\r\n第二行 𠀀"
        kind = i % 1000
        if kind == 503:
            text = ""
        row = ["", when, "客户%d" % i, "138%08d" % i, "广东深圳", "KFR-%d" % (i % 50),
               '"%s"' % text, "上门维修", "坐席%d" % (i % 30)]
        if kind == 17:
            row[1] = "2025-13-45 99:99"
            bad[line_no] = "unparseable time"
        elif kind == 503:
            bad[line_no] = "empty text"
        elif kind == 911:
            row.append("多余")
            bad[line_no] = "expected 9 columns"
        else:
            good.add(utc(when))
        lines.append(",".join(row))
        line_no += 1 + text.count("\n")
    return ("\r\n".join(lines) + "\r\n").encode("gb18030"), good, bad


class KillNine(unittest.TestCase):
    def test_kill9_mid_file(self):
        data, good, bad = big_file(BIG_ROWS)
        v = Vocd(start=False)
        failed = True
        try:
            sp = Spool(v)
            # Many rows in flight and big group commits, as a bulk import would be set up.
            v.write_config(plugin_yaml(sp.dir, max_in_flight=IN_FLIGHT) +
                           "writer:\n  queue_limit: 10000\n  batch_max: %d\n" % IN_FLIGHT)
            v.start()
            sp.drop("big.csv", data)
            # kill -9, a graceful restart (SIGTERM: drain, exit 0), kill -9 again.
            for fraction, how in ((0.25, "kill9"), (0.5, "sigterm"), (0.75, "kill9")):
                target = int(len(good) * fraction)
                deadline = time.monotonic() + 120
                while case_count(v) < target:
                    self.assertLess(time.monotonic(), deadline, "import too slow")
                    time.sleep(0.05)
                if how == "kill9":
                    v.kill9()
                    v.start()
                else:
                    v.restart()
            summary = sp.wait_done("big.csv", timeout=300)
            self.assertRegex(v.log(), r"resuming file=big.csv line=\d+")

            # Exactly one case per good row, none for a bad one.
            cases = list_cases(v, channel="hotline")
            times = [c["received_at"] for c in cases]
            self.assertEqual(len(times), len(set(times)), "a row became two cases")
            self.assertEqual(set(times), good)
            self.assertEqual(case_count(v), len(good))
            self.assertEqual(summary["rows"], BIG_ROWS)
            self.assertEqual(summary["cases"], len(good))
            self.assertEqual(summary["rejects"], len(bad))
            self.assertGreater(summary["existing"], 0)  # rows re-read after a kill

            # Every bad row exactly once in rejects/, with its reason.
            rejects = sp.rejects("big.csv")[1:]
            listed = [int(r[0]) for r in rejects]
            self.assertEqual(len(listed), len(set(listed)), "a reject listed twice")
            self.assertEqual(set(listed), set(bad))
            for r in rejects:
                self.assertIn(bad[int(r[0])], r[1])
            self.assertTrue(os.path.exists(sp.path("done", "big.csv")))
            self.assertEqual([n for n in os.listdir(sp.path("rejects")) if n.startswith(".")],
                             [])
            failed = False
        finally:
            v.close(failed=failed)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""Hotline CSV benchmark: a generated call-centre export (GB18030, 1M rows by default) through
vocd end to end, against a bare libcsv parse of the same file, in the same run.

    contrib/bench/csv/run.py [--build DIR] [--rows N] [--in-flight N] [--batch-max N]
                             [--profile FILE | --no-profile] [--keep] [--data-parent DIR]

1. Generates the file once (kept as <build>/contrib/bench/csv/hotline-<rows>.csv).
2. Baselines, without vocd (build/contrib/bench/csv/csv_bench): libcsv alone; libcsv + iconv
   of every field; the plugin's own reader and mapper (parse, convert, intake JSON).
3. End to end: a temporary config from etc/vocd.yaml (profile, calendars, writer, store ...
   as shipped; --in-flight / --batch-max override the plugin's max_in_flight and the writer's
   batch_max), vocd started, the file renamed into the spool, the clock stopped at the
   plugin's "file done" line: hashing, parsing, GB18030 -> UTF-8, mapping, the core's
   validation, classification by the profile and the durable LMDB commits are all inside.
   Then it checks that there is one case per row.
4. Prints rows/s of each, and the ratios.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
GOAL_ROWS_PER_S = 100000

# Top-level keys of the shipped config the benchmark sets itself; everything else (profile,
# calendars, writer, store, rules ...) is what users run with, so it is copied.
OWN_KEYS = {"data_dir", "listen", "log_level", "plugin_dir", "plugins", "auth"}
PATH_KEYS = ("profile", "lib_dir")
COLUMNS = {"external_id": "工单号", "received_at": "来电时间", "customer.name": "客户姓名",
           "customer.contact": "联系电话", "customer.region": "所在地区",
           "product.model": "产品型号", "text": "问题描述", "expected": "客户诉求"}
TOKEN = "csv-bench-token"


def die(msg):
    print("run.py: " + msg, file=sys.stderr)
    sys.exit(1)


def shipped_blocks(path):
    """Top-level blocks of a YAML file as {key: [lines]} (text: the stdlib has no YAML)."""
    blocks, current = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", line)
            if m:
                current = m.group(1)
                blocks[current] = []
            if current is not None:
                blocks[current].append(line)
    return blocks


def absolutize(line, base):
    def fix(m):
        value = m.group(2).strip("\"'")
        if not os.path.isabs(value):
            value = os.path.normpath(os.path.join(base, value))
        return m.group(1) + json.dumps(value)
    for key in PATH_KEYS:
        line = re.sub(r"(\b%s\s*:\s*)(\"[^\"]*\"|'[^']*'|[^\s,}#]+)" % key, fix, line)
    return line


def write_config(path, shipped, work, plugin_dir, args):
    base = os.path.dirname(os.path.abspath(shipped))
    blocks = shipped_blocks(shipped)
    out = ["# Written by contrib/bench/csv/run.py from %s\n" % shipped]
    for key, lines in blocks.items():
        if key in OWN_KEYS or (key == "profile" and args.profile is not None):
            continue
        if key == "writer" and args.batch_max:
            continue
        out.extend(absolutize(line, base) for line in lines)
    if args.batch_max:
        out.append("writer:\n  queue_limit: %d\n  batch_max: %d\n"
                   % (max(10000, 2 * args.batch_max), args.batch_max))
    if args.profile:
        out.append("profile: %s\n" % json.dumps(os.path.abspath(args.profile)))
    out.append("data_dir: %s\n" % json.dumps(os.path.join(work, "data")))
    out.append('listen: { http: "127.0.0.1:0" }\nlog_level: info\n')
    out.append("plugin_dir: %s\n" % json.dumps(plugin_dir))
    out.append("plugins:\n  - name: hotline_csv\n")
    out.append("    spool: %s\n" % json.dumps(os.path.join(work, "spool")))
    out.append("    columns: %s\n" % json.dumps(COLUMNS, ensure_ascii=False))
    out.append('    time_format: ["%Y-%m-%d %H:%M"]\n    time_zone: Asia/Shanghai\n')
    if args.in_flight:
        out.append("    max_in_flight: %d\n" % args.in_flight)
    out.append('auth:\n  tokens:\n    - { name: bench, role: admin, sha256: "%s" }\n'
               % hashlib.sha256(TOKEN.encode()).hexdigest())
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(out)
    profile = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^profile\s*:\s*(\"[^\"]*\"|[^\s#]+)", line)
            if m:
                profile = m.group(1).strip('"')
    return profile


def run_tool(tool, *args):
    cp = subprocess.run([tool] + list(args), capture_output=True, text=True)
    if cp.returncode != 0:
        die("%s %s failed: %s" % (tool, " ".join(args), cp.stderr))
    m = re.search(r"rows=(\d+) bytes=(\d+) seconds=([\d.]+) rows_per_s=(\d+)", cp.stdout)
    return {"rows": int(m.group(1)), "seconds": float(m.group(3)), "rate": int(m.group(4))}


def get(port, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode("utf-8")


def rss_anon_kb(pid):
    """Anonymous resident memory (the LMDB map is file-backed and not counted here)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_lines(work):
    u = os.uname()
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print("machine: %s, %d CPUs (%s), kernel %s" % (u.nodename, os.cpu_count(), cpu, u.release))
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    df = subprocess.run(["df", "-hT", work], capture_output=True, text=True).stdout.splitlines()
    print("work dir: %s\n  %s" % (work, df[-1] if df else "?"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--vocd", help="vocd binary (default: <build>/daemon/vocd)")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--in-flight", type=int, help="the plugin's max_in_flight")
    ap.add_argument("--batch-max", type=int, help="the writer's batch_max")
    ap.add_argument("--profile", help="Lua profile (default: as etc/vocd.yaml says)")
    ap.add_argument("--no-profile", dest="profile", action="store_const", const="")
    ap.add_argument("--data-parent", help="where the temporary data dir goes (default: build)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    tool = os.path.join(build, "contrib", "bench", "csv", "csv_bench")
    vocd = args.vocd or os.path.join(build, "daemon", "vocd")
    plugin_dir = os.path.join(build, "plugins")
    for p in (tool, vocd, os.path.join(plugin_dir, "hotline_csv.so")):
        if not os.path.exists(p):
            die("%s is missing: build first (scripts/dev.sh build)" % p)

    work = tempfile.mkdtemp(prefix="csv-bench-", dir=args.data_parent or build)
    machine_lines(work)
    data = os.path.join(build, "contrib", "bench", "csv", "hotline-%d.csv" % args.rows)
    if not os.path.exists(data):
        print("generating %s ..." % data)
        subprocess.run([tool, "gen", str(args.rows), data + ".tmp"], check=True)
        os.rename(data + ".tmp", data)
    size = os.path.getsize(data)
    print("file: %s, %d rows, %.1f MB, GB18030" % (data, args.rows, size / 1e6))

    print("\nbaselines (no vocd):")
    base = {}
    for mode, what in (("libcsv", "bare libcsv parse"),
                       ("iconv", "libcsv + iconv GB18030 -> UTF-8 of every field"),
                       ("plugin", "the plugin's reader + mapper (intake JSON)")):
        base[mode] = run_tool(tool, mode, data)
        print("  %-48s %10d rows/s  (%.2f s)" % (what, base[mode]["rate"], base[mode]["seconds"]))

    config = os.path.join(work, "vocd.yaml")
    profile = write_config(config, os.path.join(REPO, "etc", "vocd.yaml"), work, plugin_dir, args)
    os.makedirs(os.path.join(work, "spool"))
    log_path = os.path.join(work, "vocd.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([vocd, "-c", config], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                die("vocd did not start:\n" + open(log_path, encoding="utf-8").read()[-3000:])
            m = re.search(r"INFO http: listening addr=[\d.]+:(\d+)",
                          open(log_path, encoding="utf-8", errors="replace").read())
            port = int(m.group(1)) if m else None
            time.sleep(0.05)
        stage = os.path.join(work, ".incoming.csv")
        try:
            os.link(data, stage)
        except OSError:
            shutil.copyfile(data, stage)
        print("\nend to end: vocd %s, profile %s, max_in_flight %s, writer batch_max %s"
              % (vocd, profile or "(none)", args.in_flight or "default",
                 args.batch_max or "as shipped"))
        t0 = time.monotonic()
        os.rename(stage, os.path.join(work, "spool", "hotline.csv"))
        done = None
        peak_anon = 0
        while done is None:
            peak_anon = max(peak_anon, rss_anon_kb(proc.pid))
            if proc.poll() is not None:
                die("vocd exited:\n" + open(log_path, encoding="utf-8").read()[-3000:])
            if time.monotonic() - t0 > args.timeout:
                die("no 'file done' within %.0fs" % args.timeout)
            time.sleep(0.05)
            done = re.search(r"file done file=hotline.csv rows=(\d+) cases=(\d+) .*rejects=(\d+)",
                             open(log_path, encoding="utf-8", errors="replace").read())
        e2e_s = time.monotonic() - t0
        rows, cases, rejects = (int(x) for x in done.groups())
        status = json.loads(get(port, "/api/v1/status"))
        metrics = get(port, "/metrics")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    def metric(name):
        m = re.search(r"^%s ([\d.e+]+)" % name, metrics, re.M)
        return float(m.group(1)) if m else float("nan")

    rate = rows / e2e_s
    print("  rows %d, cases %d, rejects %d, cases in the store %d"
          % (rows, cases, rejects, status["cases"]))
    print("  writer: %d commits, largest %d, %.1f s committing (fsync included)"
          % (metric("vocd_writer_batches_total"), metric("vocd_writer_largest_batch"),
             metric("vocd_writer_commit_seconds_total")))
    print("  vocd anonymous memory (RssAnon) at most %.0f MiB during the import" % (peak_anon / 1024))
    print("  %-48s %10d rows/s  (%.2f s)" % ("file renamed in -> 'file done'", rate, e2e_s))
    print("\nresult:")
    print("  end to end            %10.0f rows/s" % rate)
    print("  bare libcsv parse     %10d rows/s" % base["libcsv"]["rate"])
    print("  ratio end to end / bare libcsv: %.4f (1 : %.0f)"
          % (rate / base["libcsv"]["rate"], base["libcsv"]["rate"] / rate))
    print("  ratio plugin alone / bare libcsv: %.3f"
          % (base["plugin"]["rate"] / base["libcsv"]["rate"]))
    print("  goal %d rows/s end to end: %s" % (GOAL_ROWS_PER_S,
                                               "met" if rate >= GOAL_ROWS_PER_S else "NOT met"))
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    ok = rows == args.rows and cases == args.rows and status["cases"] == args.rows
    if not ok:
        print("ERROR: expected %d cases" % args.rows)
    if args.keep:
        print("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

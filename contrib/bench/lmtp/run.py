#!/usr/bin/env python3
"""LMTP benchmark: messages/s into vocd's email plugin against a bare LMTP sink, same run.

For a 5 KB Chinese text message and for a message with a 1 MB attachment, over one
connection and over several, lmtp_load delivers for --duration seconds to
  - lmtp_sink: the plugin's LMTP state machine answering 250 at once (no parsing, no files,
    no durable write): the ceiling of the protocol and the client;
  - vocd with the email plugin: parse (GMime), store the attachment (fsync), create the case
    (LMDB commit), then 250.
and prints rate, latency and vocd/sink. Every message has its own Message-ID and its own
attachment bytes. Builds nothing: it expects the CMake build.

    contrib/bench/lmtp/run.py [--build DIR] [--duration 5] [--connections 4,16] [--keep]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def die(msg):
    print("run.py: " + msg, file=sys.stderr)
    sys.exit(1)


def wait_line(path, regex, proc, timeout=30):
    deadline = time.monotonic() + timeout
    rx = re.compile(regex, re.M)
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as f:
            m = rx.search(f.read())
        if m:
            return m
        if proc.poll() is not None:
            die("%s exited early:\n%s" % (proc.args[0], open(path).read()[-2000:]))
        time.sleep(0.02)
    die("no line matching %r in %s" % (regex, path))


def load(loadgen, port, conns, duration, kind, size):
    cp = subprocess.run([loadgen, str(port), "--connections", str(conns), "--duration",
                         str(duration), "--kind", kind, "--size", str(size)],
                        capture_output=True, text=True, timeout=duration * 4 + 120)
    m = re.search(r"messages=(\d+) seconds=([\d.]+) rate=([\d.]+) p50_ms=([\d.]+) "
                  r"p99_ms=([\d.]+) failed=(\d+)", cp.stdout)
    if not m:
        die("lmtp_load failed: %s %s" % (cp.stdout, cp.stderr))
    if cp.stderr.strip():
        print("  lmtp_load: " + cp.stderr.strip().replace("\n", "\n  lmtp_load: "))
    return {"messages": int(m.group(1)), "rate": float(m.group(3)),
            "p50": float(m.group(4)), "p99": float(m.group(5)), "failed": int(m.group(6))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--connections", default="4,16",
                    help="the 'several' connection counts, comma-separated (1 is always run)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    vocd = os.path.join(build, "daemon", "vocd")
    sink = os.path.join(build, "contrib", "bench", "lmtp", "lmtp_sink")
    loadgen = os.path.join(build, "contrib", "bench", "lmtp", "lmtp_load")
    plugin_dir = os.path.join(build, "plugins")
    for path in (vocd, sink, loadgen, os.path.join(plugin_dir, "email.so")):
        if not os.path.exists(path):
            die("%s is missing: build first (cmake --build %s)" % (path, build))

    work = tempfile.mkdtemp(prefix="bench-lmtp.", dir=build)  # a real disk, not tmpfs
    data_dir = os.path.join(work, "data")
    config = os.path.join(work, "vocd.yaml")
    with open(config, "w") as f:
        f.write("data_dir: %s\nlisten: { http: 127.0.0.1:0 }\nlog_level: info\n"
                "plugin_dir: %s\nplugins:\n  - name: email\n    lmtp: 127.0.0.1:0\n"
                "    max_message_size: 25MB\n" % (data_dir, plugin_dir))
    print("machine: %s, %d CPUs, load average %s" % (
        os.uname().nodename, os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3])))
    print("data dir: %s" % data_dir)
    procs = []
    try:
        sink_log = os.path.join(work, "sink.log")
        sp = subprocess.Popen([sink, "0"], stdout=open(sink_log, "w"), stderr=subprocess.STDOUT)
        procs.append(sp)
        sink_port = int(wait_line(sink_log, r"^listening (\d+)$", sp).group(1))
        vocd_log = os.path.join(work, "vocd.log")
        vp = subprocess.Popen([vocd, "-c", config], stdout=open(vocd_log, "w"),
                              stderr=subprocess.STDOUT)
        procs.append(vp)
        vocd_port = int(wait_line(vocd_log, r"listening lmtp addr=127\.0\.0\.1:(\d+)",
                                  vp).group(1))
        # warm-up: page cache, LMDB map, GMime
        load(loadgen, vocd_port, 1, 1, "text", 5 * 1024)

        rows = []
        for kind, size, label in (("text", 5 * 1024, "5 KB text"),
                                  ("attach", 1024 * 1024, "1 MB attachment")):
            for conns in [1] + [int(c) for c in args.connections.split(",") if int(c) > 1]:
                base = load(loadgen, sink_port, conns, args.duration, kind, size)
                real = load(loadgen, vocd_port, conns, args.duration, kind, size)
                rows.append((label, conns, base, real))
                print("  %-16s %2d conn  sink %8.1f msg/s   vocd %8.1f msg/s  (p50 %.2f ms, "
                      "p99 %.2f ms, failed %d)" % (label, conns, base["rate"], real["rate"],
                                                   real["p50"], real["p99"], real["failed"]))
        print()
        print("| message | connections | sink msg/s | vocd msg/s | vocd/sink | vocd p50 ms "
              "| vocd p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for label, conns, base, real in rows:
            print("| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f |" % (
                label, conns, base["rate"], real["rate"],
                real["rate"] / base["rate"] if base["rate"] else 0, real["p50"], real["p99"]))
        du = subprocess.run(["du", "-sh", data_dir], capture_output=True, text=True).stdout
        print("\nstore after the run: %s" % du.strip())
        print("load average after: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if args.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

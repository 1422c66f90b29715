#!/usr/bin/env python3
"""Ingest benchmark: POST /api/v1/cases on vocd against a bare evhttp handler, same run.

Starts bare_server and vocd (temporary config and data dir on a real disk), warms both up, then
drives each with loadgen at full speed (closed loop) and at a fixed rate (open loop), and
prints cases/s, p50, p99 and the vocd/bare ratios, plus vocd's group-commit figures from
/metrics. Builds nothing: it expects the CMake build (see contrib/bench/README.md).

    contrib/bench/ingest/run.py [--build DIR] [--duration 10] [--rate 5000] [--perf FILE]

With --webhook the same records go through the webhook channel plugin instead: POST
/hooks/bench, each request signed by loadgen (X-Voc-Timestamp, X-Voc-Signature), the bare
server getting the very same signed requests.
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

# Top-level keys of the shipped config that the benchmark sets itself. Everything else
# (profile, calendars, writer, store, http, rules, notifiers ...) is what users run with, so
# it is copied. Plugins are left out: they listen on fixed ports and need the plugin build.
OWN_KEYS = {"data_dir", "listen", "log_level", "plugin_dir", "plugins", "auth"}
# Path-valued keys inside copied blocks: relative to the shipped file, made absolute.
PATH_KEYS = ("profile", "lib_dir")

# --webhook: the webhook plugin's source the load goes to.
WEBHOOK_PATH = "/hooks/bench"

GOAL_RATIO = 0.50  # durable vocd ingest at least half the bare handler's rate
GOAL_P99_MS = 20.0  # at the fixed rate


def die(msg):
    print("run.py: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- config ----


def absolutize(line, base):
    """Make the value of a path key on this line absolute (relative to `base`)."""
    def fix(m):
        value = m.group(2).strip("\"'")
        if not os.path.isabs(value):
            value = os.path.normpath(os.path.join(base, value))
        return m.group(1) + json.dumps(value)
    for key in PATH_KEYS:
        line = re.sub(r"(\b%s\s*:\s*)(\"[^\"]*\"|'[^']*'|[^\s,}#]+)" % key, fix, line)
    return line


def shipped_blocks(path):
    """Top-level blocks of a YAML file as {key: [lines]}, in order (text, not a YAML parser:
    the stdlib has none, and the blocks are copied verbatim)."""
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


def write_config(path, shipped, data_dir, token_sha256, profile):
    """profile: None = as shipped, "" = none, else this file."""
    base = os.path.dirname(os.path.abspath(shipped))
    out = ["# Written by contrib/bench/ingest/run.py from %s\n" % shipped]
    kept = []
    for key, lines in shipped_blocks(shipped).items():
        if key in OWN_KEYS or (key == "profile" and profile is not None):
            continue
        kept.append(key)
        out.extend(absolutize(line, base) for line in lines)
    out.append("\ndata_dir: %s\n" % json.dumps(data_dir))
    out.append('listen: { http: "127.0.0.1:0" }\n')
    out.append("log_level: warn\n")
    if profile:
        out.append("profile: %s\n" % json.dumps(os.path.abspath(profile)))
    out.append("auth:\n  tokens:\n")
    out.append('    - { name: bench, role: ingest, sha256: "%s" }\n' % token_sha256)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(out)
    return kept


def profile_of(config_path):
    with open(config_path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^profile\s*:\s*(\"[^\"]*\"|'[^']*'|[^\s#]+)", line)
            if m:
                return m.group(1).strip("\"'")
    return None


# ---- machine ----


def mount_of(path):
    path = os.path.realpath(path)
    best = ("", "?", "?", "?")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best[0]):
                best = (mnt, dev, fstype, opts)
    return best


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def print_machine(data_dir, pin):
    u = os.uname()
    print("machine: %s, %d CPUs (%s), kernel %s %s" % (
        u.nodename, os.cpu_count(), cpu_model(), u.release, u.machine))
    load = os.getloadavg()
    print("load average before: %.2f %.2f %.2f" % load)
    if load[0] > 0.5 * os.cpu_count():
        print("note: the machine is busy; the figures will be noisy (see contrib/bench/README.md)")
    mnt, dev, fstype, opts = mount_of(data_dir)
    print("data dir: %s\n  on %s (%s, %s) mounted at %s" % (data_dir, dev, fstype, opts, mnt))
    df = subprocess.run(["df", "-h", data_dir], capture_output=True, text=True)
    for line in df.stdout.splitlines():
        print("  " + line)
    if pin:
        print("pinning: servers on CPU %d, loadgen on CPU %d" % (pin[0], pin[1]))
    else:
        print("pinning: off")
    return fstype


# ---- processes ----


def pinned(cpu):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def listening_ports(pid):
    """TCP ports the process listens on, from /proc (vocd logs its port at INFO, which the
    benchmark's log_level warn hides)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                m = re.match(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
    except OSError:
        return []
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                ports.append(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def http_get(port, path, timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def wait_healthy(proc, port, name, log_path):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            if http_get(port, "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    show_log(log_path)
    die("%s did not become healthy on port %d" % (name, port))


def show_log(path, limit=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return
    for line in lines[-limit:]:
        print("  | " + line.rstrip(), file=sys.stderr)


def start_bare(binary, cpu, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([binary], stdout=subprocess.PIPE, stderr=log, text=True,
                            preexec_fn=pinned(cpu))
    line = proc.stdout.readline()
    m = re.search(r"listening addr=\S+:(\d+)", line)
    if not m:
        proc.kill()
        die("bare_server did not print its port (got %r)" % line)
    return proc, int(m.group(1))


def start_vocd(binary, config, cpu, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, "-c", config], stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=pinned(cpu))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            show_log(log_path)
            die("vocd exited with %d during start-up" % proc.returncode)
        # The log line, when the level lets it through; /proc otherwise.
        with open(log_path, encoding="utf-8", errors="replace") as f:
            m = re.search(r"INFO http: listening addr=\S+:(\d+)", f.read())
        ports = [int(m.group(1))] if m else listening_ports(proc.pid)
        if ports:
            return proc, ports[0]
        time.sleep(0.05)
    proc.kill()
    die("vocd did not start listening within 60 s")


def stop(proc, name):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print("run.py: %s did not stop on SIGTERM, killing it" % name, file=sys.stderr)
        proc.kill()
        return proc.wait()


# ---- load ----


def loadgen(args, port, token, rate, duration, label, cpu):
    conns = args.rate_connections if rate else args.connections
    cmd = [args.loadgen, "--port", str(port), "--path", "/api/v1/cases",
           "-H", "Authorization: Bearer " + token, "-c", str(conns),
           "-d", str(duration), "--label", label, "--json"]
    if args.webhook:
        # The plugin's route; the signature differs per request (the body does).
        cmd[cmd.index("/api/v1/cases")] = WEBHOOK_PATH
        cmd += ["--hmac-secret", args.webhook_secret]
    if rate:
        cmd += ["--rate", str(rate)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120,
                       preexec_fn=pinned(cpu))
    for line in r.stderr.splitlines():
        print("  loadgen(%s): %s" % (label, line), file=sys.stderr)
    if r.returncode != 0:
        die("loadgen failed (%d) against %s" % (r.returncode, label))
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["errors_total"] = sum(result["errors"].values()) + sum(
        n for s, n in result["status"].items() if not s.startswith("2"))
    return result


def scrape(port):
    _, text = http_get(port, "/metrics")
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            pass
    return values


def cpu_seconds(pid):
    """User + system CPU seconds of each thread of pid, by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # The main thread runs the event loop in both servers; vocd does not name its others.
        key = "loop" if tid == str(pid) else "%s/%s" % (name, tid)
        out[key] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_used(before, after, elapsed):
    """Share of one CPU each thread used between two cpu_seconds() samples."""
    used = {k: (v - before.get(k, 0)) / elapsed for k, v in after.items()}
    return {k: v for k, v in used.items() if v >= 0.01}


def writer_figures(before, after):
    d = {k: after.get(k, 0) - before.get(k, 0) for k in (
        "vocd_writer_batches_total", "vocd_writer_jobs_total",
        "vocd_writer_commit_seconds_total", "vocd_writer_unavailable_total",
        "vocd_writer_map_full_retries_total")}
    return {
        "batches": int(d["vocd_writer_batches_total"]),
        "jobs": int(d["vocd_writer_jobs_total"]),
        "commit_s": d["vocd_writer_commit_seconds_total"],
        "unavailable": int(d["vocd_writer_unavailable_total"]),
        "map_full_retries": int(d["vocd_writer_map_full_retries_total"]),
        "largest": int(after.get("vocd_writer_largest_batch", 0)),
    }


# ---- report ----


def fmt_row(target, mode, r):
    rate = r["mode"] == "rate"
    return "%-6s %-18s %10.0f %9.3f %9.3f %9.3f %8d %7s %7s" % (
        target, mode, r["ok_rps"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["errors_total"],
        r["late"] if rate else "-", r["starved"] if rate else "-")


def ratio(a, b):
    return a / b if b else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="CMake build dir (default: %(default)s)")
    ap.add_argument("--vocd", help="vocd binary (default: BUILD/daemon/vocd)")
    ap.add_argument("--config", default=os.path.join(REPO, "etc", "vocd.yaml"),
                    help="shipped config to take the profile, calendars, writer ... from")
    ap.add_argument("--profile", help="Lua profile to run instead of the shipped config's")
    ap.add_argument("--no-profile", action="store_true", help="run vocd without a profile")
    ap.add_argument("--data-parent", help="where the temporary data dir goes (default: BUILD; "
                    "must be a real disk, never tmpfs)")
    ap.add_argument("-c", "--connections", type=int, default=64)
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target")
    ap.add_argument("-r", "--rate", type=float, default=5000.0, help="fixed rate, requests/s")
    ap.add_argument("--rate-connections", type=int, default=256,
                    help="connections for the fixed-rate runs (default %(default)s): open loop "
                    "needs rate x latency of them, or requests queue in loadgen (column 'late')")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the measured runs; the summary takes medians")
    ap.add_argument("--server-cpu", type=int, help="CPU for the servers (default: the last)")
    ap.add_argument("--client-cpu", type=int, default=0, help="CPU for loadgen (default: 0)")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place everything")
    ap.add_argument("--perf", metavar="FILE",
                    help="perf record -g vocd during its (first) full-speed run into FILE")
    ap.add_argument("--keep", action="store_true", help="keep the temporary dir (config, data, logs)")
    ap.add_argument("--webhook", action="store_true",
                    help="post through the webhook plugin (%s, HMAC-signed per request) "
                    "instead of the API" % WEBHOOK_PATH)
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    args.vocd = os.path.abspath(args.vocd or os.path.join(build, "daemon", "vocd"))
    bench = os.path.join(build, "contrib", "bench", "ingest")
    args.bare = os.path.join(bench, "bare_server")
    args.loadgen = os.path.join(bench, "loadgen")
    args.webhook_secret = secrets.token_hex(32)
    if args.webhook and not os.path.exists(os.path.join(build, "plugins", "webhook.so")):
        die("%s/plugins/webhook.so is missing: build first" % build)
    for b in (args.vocd, args.bare, args.loadgen):
        if not os.access(b, os.X_OK):
            die("%s is missing: build first (cmake --build %s), or pass --build/--vocd" % (b, build))

    ncpu = len(os.sched_getaffinity(0))
    pin = None
    if not args.no_pin and ncpu >= 2:
        server_cpu = args.server_cpu if args.server_cpu is not None else max(os.sched_getaffinity(0))
        pin = (server_cpu, args.client_cpu)
    server_cpu, client_cpu = pin if pin else (None, None)

    parent = os.path.abspath(args.data_parent or build)
    work = tempfile.mkdtemp(prefix="bench-ingest.", dir=parent)
    data_dir = os.path.join(work, "data")
    os.mkdir(data_dir)
    procs = {}
    try:
        print("== vocd ingest benchmark ==")
        print("command: " + " ".join([sys.argv[0]] + sys.argv[1:]))
        fstype = print_machine(data_dir, pin)
        if fstype in ("tmpfs", "ramfs"):
            die("the data dir is on %s: fsync would cost nothing; use --data-parent on a disk"
                % fstype)
        if os.stat(parent).st_dev != os.stat(REPO).st_dev:
            print("note: the data dir is not on the repository's file system")

        token = secrets.token_hex(16)
        config = os.path.join(work, "vocd.yaml")
        kept = write_config(config, args.config, data_dir,
                            hashlib.sha256(token.encode()).hexdigest(),
                            "" if args.no_profile else args.profile)
        if args.webhook:
            with open(config, "a", encoding="utf-8") as f:
                f.write("plugin_dir: %s\nplugins:\n  - name: webhook\n    sources:\n"
                        # The load's records say channel hotline; a source may only
                        # create cases on the channels it lists.
                        "      - { name: bench, secret: \"%s\", channels: [hotline] }\n"
                        % (json.dumps(os.path.join(build, "plugins")), args.webhook_secret))
            print("webhook: POST %s through the webhook plugin, every request signed "
                  "(HMAC-SHA256 over timestamp and body); bare gets the same requests"
                  % WEBHOOK_PATH)
        profile = None if args.no_profile else profile_of(config)
        print("vocd: %s" % args.vocd)
        print("config: %s (from %s: %s; log_level warn, role ingest)" % (
            config, os.path.relpath(args.config, REPO), ", ".join(kept) or "nothing"))
        print("profile: %s" % (profile or ("none (--no-profile)" if args.no_profile else
                                           "none (the shipped config names no profile)")))
        check = subprocess.run([args.vocd, "-c", config, "--check"], capture_output=True, text=True)
        if check.returncode != 0:
            print(check.stdout + check.stderr, file=sys.stderr)
            die("vocd --check refused the benchmark config")

        procs["bare"], bare_port = start_bare(args.bare, server_cpu, os.path.join(work, "bare.log"))
        wait_healthy_bare(bare_port)
        procs["vocd"], vocd_port = start_vocd(args.vocd, config, server_cpu,
                                              os.path.join(work, "vocd.log"))
        wait_healthy(procs["vocd"], vocd_port, "vocd", os.path.join(work, "vocd.log"))
        ports = {"bare": bare_port, "vocd": vocd_port}
        print("bare_server on port %d, vocd on port %d (pid %d)" % (
            bare_port, vocd_port, procs["vocd"].pid))
        print("load: %.0f s per run; full speed on %d keep-alive connections, fixed rate %.0f/s "
              "on %d; ~300-byte Chinese complaint texts, unique external_id per request" % (
                  args.duration, args.connections, args.rate, args.rate_connections))

        if args.warmup > 0:
            for target in ("bare", "vocd"):
                w = loadgen(args, ports[target], token, 0, args.warmup, target + "-warmup",
                            client_cpu)
                if w["ok"] == 0 or w["errors_total"] > 0:
                    die("warm-up against %s failed: status %s errors %s" % (
                        target, w["status"], w["errors"]))
            print("warm-up: %.0f s full speed against each" % args.warmup)

        rows = []  # (round, target, mode, result, writer figures)
        perf_done = False
        for rnd in range(1, args.rounds + 1):
            for mode, rate in (("full", 0), ("rate", args.rate)):
                for target in ("bare", "vocd"):
                    label = "%s-%s-%d" % (target, mode, rnd)
                    before = scrape(vocd_port) if target == "vocd" else None
                    cpu_before, t_before = cpu_seconds(procs[target].pid), time.time()
                    perf = None
                    if args.perf and target == "vocd" and mode == "full" and not perf_done:
                        perf = subprocess.Popen(
                            # DWARF unwinding: the build has no frame pointers.
                            ["perf", "record", "--call-graph", "dwarf,16384", "-F", "499",
                             "-o", args.perf, "-p",
                             str(procs["vocd"].pid), "--", "sleep", str(args.duration)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=pinned(client_cpu))
                        perf_done = True
                    r = loadgen(args, ports[target], token, rate, args.duration, label, client_cpu)
                    if perf:
                        _, perr = perf.communicate(timeout=120)
                        if perf.returncode != 0:
                            print("run.py: perf record failed: " + perr.strip(), file=sys.stderr)
                    r["cpu"] = cpu_used(cpu_before, cpu_seconds(procs[target].pid),
                                        time.time() - t_before)
                    wf = writer_figures(before, scrape(vocd_port)) if before is not None else None
                    rows.append((rnd, target, mode, r, wf))

        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        report(args, rows)
        if args.perf and os.path.exists(args.perf):
            print_perf(args.perf)
    finally:
        codes = {name: stop(p, name) for name, p in procs.items()}
        vocd_log = os.path.join(work, "vocd.log")
        if os.path.exists(vocd_log):
            with open(vocd_log, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
            if lines:
                print("vocd logged %d line(s) at warn or above; the first ones:" % len(lines))
                for line in lines[:5]:
                    print("  | " + line.rstrip())
        if codes.get("vocd") not in (None, 0):
            print("run.py: vocd exited with %s" % codes["vocd"], file=sys.stderr)
        if args.keep:
            print("kept %s (config, data, logs)" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def wait_healthy_bare(port):
    # The bare server answers 405 to GET; any HTTP answer means it is serving.
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            http_get(port, "/", timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    die("bare_server does not answer on port %d" % port)


def report(args, rows):
    mode_name = {"full": "full speed %dc" % args.connections,
                 "rate": "%.0f/s %dc" % (args.rate, args.rate_connections)}
    print()
    print("%-6s %-18s %10s %9s %9s %9s %8s %7s %7s" % (
        "target", "mode", "cases/s", "p50 ms", "p99 ms", "max ms", "errors", "late", "noconn"))
    for rnd, target, mode, r, _ in rows:
        name = mode_name[mode] + (" #%d" % rnd if args.rounds > 1 else "")
        print(fmt_row(target, name, r))
    print("(fixed rate: late = sent more than 1 ms after the due time, for any reason; noconn ="
          " waited for a free connection.\n The wait is part of their latency.)")

    def pick(target, mode, key):
        vals = [r[key] for _, t, m, r, _ in rows if t == target and m == mode]
        return statistics.median(vals)

    agg = "median of %d rounds" % args.rounds if args.rounds > 1 else "this run"
    print()
    print("vocd/bare (%s):" % agg)
    for mode in ("full", "rate"):
        rps = ratio(pick("vocd", mode, "ok_rps"), pick("bare", mode, "ok_rps"))
        p50 = ratio(pick("vocd", mode, "p50_ms"), pick("bare", mode, "p50_ms"))
        p99 = ratio(pick("vocd", mode, "p99_ms"), pick("bare", mode, "p99_ms"))
        print("  %-18s cases/s %.2f   p50 %.1fx   p99 %.1fx" % (mode_name[mode], rps, p50, p99))

    print()
    print("vocd group commit (from /metrics, per run):")
    for rnd, target, mode, r, wf in rows:
        if not wf:
            continue
        avg = wf["jobs"] / wf["batches"] if wf["batches"] else 0
        per_commit = 1000 * wf["commit_s"] / wf["batches"] if wf["batches"] else 0
        share = wf["commit_s"] / r["elapsed_s"] if r["elapsed_s"] else 0
        print("  %-18s batches %7d  jobs %8d  avg batch %6.1f  commit %.2f ms/batch "
              "(%.0f%% of the run)  largest %d  503s %d  map growths %d" % (
                  mode_name[mode] + (" #%d" % rnd if args.rounds > 1 else ""), wf["batches"],
                  wf["jobs"], avg, per_commit, 100 * share, wf["largest"], wf["unavailable"],
                  wf["map_full_retries"]))

    print()
    print("server CPU per run (share of one CPU, by thread; the run includes loadgen's "
          "start-up):")
    for rnd, target, mode, r, _ in rows:
        threads = sorted(r["cpu"].items(), key=lambda kv: -kv[1])
        print("  %-6s %-18s total %4.0f%%   %s" % (
            target, mode_name[mode] + (" #%d" % rnd if args.rounds > 1 else ""),
            100 * sum(v for _, v in threads),
            "  ".join("%s %.0f%%" % (k, 100 * v) for k, v in threads)))

    print()
    full_ratio = ratio(pick("vocd", "full", "ok_rps"), pick("bare", "full", "ok_rps"))
    vocd_rate = [r for _, t, m, r, _ in rows if t == "vocd" and m == "rate"]
    p99 = statistics.median(r["p99_ms"] for r in vocd_rate)
    achieved = statistics.median(r["ok_rps"] for r in vocd_rate)
    errors = sum(r["errors_total"] for r in vocd_rate)
    ok_ratio = full_ratio >= GOAL_RATIO
    ok_p99 = p99 < GOAL_P99_MS and errors == 0 and achieved >= 0.99 * args.rate
    print("goal: vocd full-speed cases/s >= %.0f%% of bare: %.0f%%  %s" % (
        100 * GOAL_RATIO, 100 * full_ratio, "MET" if ok_ratio else "MISSED"))
    print("goal: vocd p99 < %.0f ms at %.0f cases/s: p99 %.2f ms, %.0f cases/s, %d errors  %s" % (
        GOAL_P99_MS, args.rate, p99, achieved, errors, "MET" if ok_p99 else "MISSED"))


def perf_lines(path, *opts):
    r = subprocess.run(["perf", "report", "-i", path, "--stdio", "-g", "none"] + list(opts),
                       capture_output=True, text=True)
    return [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]


def print_perf(path):
    print()
    print("perf profile of vocd during its full-speed run (%s); %% of vocd's CPU samples" % path)
    print(" by thread (the main thread runs the event loop):")
    for line in perf_lines(path, "--no-children", "--sort", "pid")[:6]:
        print("  " + line)
    print(" vocd's own functions, inclusive (children) time:")
    own = [l for l in perf_lines(path, "--children", "--sort", "pid,dso,sym",
                                 "--percent-limit", "1.5")
           if re.search(r"\svocd\s+\[\.\]", l)
           and not re.search(r"\] (_start|main|voc_daemon_run)$", l)]
    for line in own[:30]:
        print("  " + line)
    print(" self time, any library or the kernel:")
    for line in perf_lines(path, "--no-children", "--sort", "pid,dso,sym",
                           "--percent-limit", "0.8")[:25]:
        print("  " + line)
    print("  (perf report -i %s --children for the call graphs)" % path)


if __name__ == "__main__":
    main()

"""Shared harness for the black-box integration tests: start the built vocd, talk HTTP to it.

Python 3 standard library only. Typical use::

    from vocd_harness import Vocd

    with Vocd(config_extra={"http": {"max_body_size": "64KiB"}}) as v:
        status, headers, body = v.request("POST", "/api/v1/cases", {"text": "坏了"})
        assert status == 201
        v.restart()                       # same data dir, new port
        status, _, case = v.request("GET", "/api/v1/cases/%d" % body["id"], token="viewer")

API (everything else in this module is internal):

``Vocd(config_extra=None, tokens=None, binary=None, start=True, env=None)``
    Writes ``<tmp>/vocd.yaml`` with a temporary ``data_dir`` (``<tmp>/data``),
    ``listen: { http: 127.0.0.1:0 }``, ``log_level: debug`` and the tokens below, then starts
    the daemon (``$VOCD_BIN``, else /work/main/build/daemon/vocd) and waits for its stderr line
    ``INFO http: listening addr=HOST:PORT``; the port comes from that line, never guessed.
    ``config_extra`` is a dict deep-merged into that config (dicts merge, anything else
    replaces), or YAML text appended to it verbatim.
    ``tokens`` replaces the default token list: a list of
    ``{"name": ..., "role": ..., "token": ..., "departments": [...]}``; the config gets the
    token's SHA-256, the harness keeps the token string.
    Use it as a context manager: on exit the daemon gets SIGTERM and the test fails (the
    ``with`` raises AssertionError) if it crashed (died by a signal), did not exit 0, or a
    sanitizer (ASan / UBSan / LSan) printed anything on stderr.

``TOKENS``
    The default tokens, name -> token string: ``admin`` (role admin), ``agent`` (role agent,
    departments [质量部]), ``viewer``, ``ingest``.

``vocd_bin()``, ``vocctl_bin()``
    The binaries under test ($VOCD_BIN, $VOCCTL_BIN; ctest sets them), else the build tree's.

Attributes: ``.url`` (``http://127.0.0.1:PORT``), ``.host``, ``.port``, ``.dir`` (the temp
folder), ``.config_path``, ``.data_dir``, ``.tokens`` (name -> token), ``.proc``.

Methods:
    ``.request(method, path, body=None, token="admin", headers=None, timeout=30)``
        -> ``(status, headers, json_or_bytes)``. ``body``: dict/list (sent as JSON), str
        (UTF-8) or bytes (sent raw). ``token``: a token name from ``.tokens``, any other string
        (sent as is), or None (no Authorization header). ``headers`` is an
        ``http.client.HTTPMessage`` (case-insensitive ``.get``); the body is parsed JSON when
        the reply says ``application/json``, else bytes. One connection per call, so it is safe
        from several threads.
    ``.create_case(token="admin", **record)`` -> id (asserts 201 or 200).
    ``.start()``, ``.restart()`` (SIGTERM, start again on the same data dir; the port changes),
    ``.kill9()`` (SIGKILL, not counted as a crash), ``.sigterm(timeout=30)`` (asserts exit 0,
    returns the exit code), ``.sighup()``, ``.wait_exit(timeout=30)`` (after a signal the test
    sent itself through ``.proc.send_signal``; returns the exit code).
    ``.write_config(config_extra=None, raw=None)``: rewrite the config file (for reload tests):
    the base config merged with ``config_extra``, or exactly the text ``raw``.
    ``.log()``: stderr of the current run; ``.log_mark()`` + ``.wait_log(regex, since=mark,
    timeout=10)`` wait for a log line written after the mark (returns the match).
    ``.run(*args, timeout=60)``: run the binary to completion with ``-c CONFIG`` and ``args``
    (e.g. ``"--check"``); returns ``subprocess.CompletedProcess`` (text). Its stderr is
    checked for sanitizer reports too.

The temp folder is removed on success and kept (path printed) when the test failed or
``VOCD_KEEP=1``. Daemons are started with PR_SET_PDEATHSIG, so they die with the thread
that started them: start them from the main test thread.
"""

import copy
import ctypes
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOKENS = {
    "admin": "it-admin-6f1c0d2e",
    "agent": "it-agent-9a7b3c41",
    "viewer": "it-viewer-52e8d7aa",
    "ingest": "it-ingest-c0ffee17",
}

_DEFAULT_TOKEN_LIST = [
    {"name": "admin", "role": "admin", "token": TOKENS["admin"]},
    {"name": "agent", "role": "agent", "token": TOKENS["agent"], "departments": ["质量部"]},
    {"name": "viewer", "role": "viewer", "token": TOKENS["viewer"]},
    {"name": "ingest", "role": "ingest", "token": TOKENS["ingest"]},
]

_LISTEN_RE = re.compile(r"^INFO http: listening addr=(\S+):(\d+)$", re.M)
_SANITIZER_RE = re.compile(r"ERROR: \w*Sanitizer|runtime error:|SUMMARY: \w*Sanitizer")
START_TIMEOUT = float(os.environ.get("VOCD_START_TIMEOUT", "30"))
_DEFAULT = object()


def vocd_bin():
    """The vocd binary under test: $VOCD_BIN, else the default build tree's."""
    return os.environ.get("VOCD_BIN") or "/work/main/build/daemon/vocd"


def vocctl_bin():
    """The vocctl binary under test: $VOCCTL_BIN, else the build tree's ($VOC_BUILD_DIR)."""
    return os.environ.get("VOCCTL_BIN") or os.path.join(
        os.environ.get("VOC_BUILD_DIR") or "/work/main/build", "daemon", "vocctl", "vocctl")


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def _merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def to_yaml(value, indent=0):
    """Block-style YAML, one key per line (so file:line messages point somewhere useful).
    Lists of mappings are written as JSON flow mappings, which YAML reads as well."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, list) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, (dict, list)):
                lines.append("%s%s: %s" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
            else:
                lines.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                lines.append("%s- %s" % (pad, json.dumps(item, ensure_ascii=False)))
            else:
                lines.append("%s- %s" % (pad, _scalar(item)))
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


def _pdeathsig():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def sanitizer_report(text):
    """The first sanitizer complaint in text, or None."""
    m = _SANITIZER_RE.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 3000]


class Vocd:
    def __init__(self, config_extra=None, tokens=None, binary=None, start=True, env=None):
        self.binary = binary or vocd_bin()
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("vocd binary %s is missing (set VOCD_BIN)" % self.binary)
        self.dir = tempfile.mkdtemp(prefix="vocd-it-")
        self.data_dir = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, "vocd.yaml")
        token_list = tokens if tokens is not None else _DEFAULT_TOKEN_LIST
        self.tokens = {t["name"]: t["token"] for t in token_list}
        self._token_list = token_list
        self.config_extra = config_extra
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.host = None
        self.port = None
        self.url = None
        self._run = 0
        self._stderr_path = None
        self._stderr_file = None
        self._problems = []
        self.write_config(config_extra)
        if start:
            try:
                self.start()
            except BaseException:
                self._cleanup(keep=True)
                raise

    # ---- config ----

    def base_config(self):
        tokens = []
        for t in self._token_list:
            entry = {"name": t["name"], "role": t["role"], "sha256": sha256_hex(t["token"])}
            if t.get("departments"):
                entry["departments"] = t["departments"]
            tokens.append(entry)
        return {
            "data_dir": self.data_dir,
            "listen": {"http": "127.0.0.1:0"},
            "log_level": "debug",
            "auth": {"tokens": tokens},
        }

    def write_config(self, config_extra=None, raw=None):
        if raw is None:
            cfg = self.base_config()
            text_extra = None
            if isinstance(config_extra, dict):
                _merge(cfg, config_extra)
            elif config_extra:
                text_extra = config_extra
            raw = "# written by tests/integration/vocd_harness.py\n" + to_yaml(cfg) + "\n"
            if text_extra:
                raw += text_extra if text_extra.endswith("\n") else text_extra + "\n"
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(raw)
        return raw

    # ---- process ----

    def start(self):
        assert self.proc is None, "vocd is already running"
        self._run += 1
        self._stderr_path = os.path.join(self.dir, "stderr.%d.log" % self._run)
        self._stderr_file = open(self._stderr_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.config_path], stdin=subprocess.DEVNULL,
            stdout=self._stderr_file, stderr=self._stderr_file, env=self.env,
            preexec_fn=_pdeathsig)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            m = _LISTEN_RE.search(self.log())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                self.url = "http://%s:%d" % (self.host, self.port)
                return self
            rc = self.proc.poll()
            if rc is not None:
                self._reap()
                raise AssertionError("vocd exited with %s before listening; stderr:\n%s"
                                     % (rc, self._log_of(self._stderr_path)))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self._reap()
                raise AssertionError("vocd did not log 'listening' within %.0fs; stderr:\n%s"
                                     % (START_TIMEOUT, self._log_of(self._stderr_path)))
            time.sleep(0.01)

    def _reap(self):
        """Bookkeeping after the process is gone: crash and sanitizer checks."""
        rc = self.proc.returncode
        self._stderr_file.close()
        self.last_returncode = rc
        self.proc = None
        text = self._log_of(self._stderr_path)
        report = sanitizer_report(text)
        if report:
            self._problems.append("sanitizer report in %s:\n%s" % (self._stderr_path, report))
        return rc, text

    def _check_crash(self, rc, expected_kill=False):
        if rc is not None and rc < 0 and not expected_kill:
            self._problems.append("vocd died by signal %d (run %d); stderr tail:\n%s" % (
                -rc, self._run, self._log_of(self._stderr_path)[-3000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            rc, text = self._reap()
            self._check_crash(rc)
            raise AssertionError("vocd is not running any more (exit %s); stderr tail:\n%s"
                                 % (rc, text[-3000:]))

    def kill9(self):
        assert self.proc is not None, "vocd is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        rc, _ = self._reap()
        self._check_crash(rc, expected_kill=(rc == -signal.SIGKILL))

    def sigterm(self, timeout=30):
        assert self.proc is not None, "vocd is not running"
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reap()
            raise AssertionError("vocd did not exit within %ss of SIGTERM" % timeout)
        rc, text = self._reap()
        self._check_crash(rc)
        self._raise_problems()
        if rc != 0:
            raise AssertionError("vocd exited %s after SIGTERM; stderr tail:\n%s"
                                 % (rc, text[-3000:]))
        return rc

    def wait_exit(self, timeout=30):
        """Wait for the daemon to exit on its own (e.g. after the test sent it a signal with
        ``.proc.send_signal``); returns the exit code. A crash or sanitizer report still
        fails the test at the end of the ``with``."""
        assert self.proc is not None, "vocd is not running"
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reap()
            raise AssertionError("vocd did not exit within %ss" % timeout)
        rc, _ = self._reap()
        self._check_crash(rc)
        return rc

    def sighup(self):
        assert self.proc is not None, "vocd is not running"
        self.proc.send_signal(signal.SIGHUP)

    def restart(self):
        if self.proc is not None:
            self.sigterm()
        return self.start()

    def run(self, *args, timeout=60):
        cp = subprocess.run([self.binary, "-c", self.config_path] + list(args),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env=self.env, timeout=timeout)
        if cp.returncode < 0:
            raise AssertionError("vocd %s died by signal %d:\n%s"
                                 % (" ".join(args), -cp.returncode, cp.stderr[-3000:]))
        report = sanitizer_report(cp.stdout + cp.stderr)
        if report:
            raise AssertionError("sanitizer report from vocd %s:\n%s" % (" ".join(args), report))
        return cp

    # ---- logs ----

    @staticmethod
    def _log_of(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log(self):
        return self._log_of(self._stderr_path) if self._stderr_path else ""

    def log_mark(self):
        return len(self.log())

    def wait_log(self, pattern, since=0, timeout=10):
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(), since)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %ss; log since mark:\n%s"
                                     % (pattern, timeout, self.log()[since:][-3000:]))
            time.sleep(0.02)

    # ---- HTTP ----

    def _auth(self, token):
        if token is None:
            return None
        return "Bearer " + self.tokens.get(token, token)

    def request(self, method, path, body=None, token=_DEFAULT, headers=None, timeout=30):
        if token is _DEFAULT:
            token = "admin"
        hdrs = {}
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
            hdrs["Content-Type"] = "application/json"
        auth = self._auth(token)
        if auth:
            hdrs["Authorization"] = auth
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            status, rheaders = resp.status, resp.headers
        finally:
            conn.close()
        if (rheaders.get("Content-Type") or "").startswith("application/json"):
            try:
                return status, rheaders, json.loads(data.decode("utf-8"))
            except ValueError:
                pass
        return status, rheaders, data

    def create_case(self, token="admin", **record):
        status, _, body = self.request("POST", "/api/v1/cases", record, token=token)
        if status not in (200, 201):
            raise AssertionError("create case: %s %r" % (status, body))
        return body["id"]

    # ---- context manager ----

    def _raise_problems(self):
        if self._problems:
            problems, self._problems = self._problems, []
            raise AssertionError("\n\n".join(problems))

    def _cleanup(self, keep):
        if keep or os.environ.get("VOCD_KEEP") == "1":
            sys.stderr.write("vocd_harness: kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def close(self, failed=False):
        try:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    rc, _ = self._reap()
                    self._check_crash(rc)
                    if rc >= 0:
                        self._problems.append("vocd exited %s on its own during the test" % rc)
                else:
                    try:
                        self.sigterm()
                    except AssertionError as e:
                        self._problems.append(str(e))
            failed = failed or bool(self._problems)
            self._raise_problems()
        finally:
            self._cleanup(keep=failed)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False

"""The SDK as an integrator meets it: install vocd, build contrib/plugin-template out of tree
against the installed <vocd/plugin.h> and vocd-plugin.pc, load it into the installed vocd and
feed a case through it.

1. `cmake --install <build> --prefix <tmp>/prefix` (no root needed; the .pc file locates
   everything from its own folder, so a prefix chosen at install time is right);
2. `cmake -S contrib/plugin-template -B <tmp>/template` with PKG_CONFIG_PATH pointing into the
   prefix, then `cmake --build`: the template sees only the installed SDK;
3. `<prefix>/bin/vocd` with plugin_dir = the template's build folder; POST text/plain to
   /template/feedback; the case is there, on channel "template".
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd, vocd_bin  # noqa: E402

SOURCE_DIR = os.environ.get("VOC_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("VOC_BUILD_DIR") or os.path.dirname(os.path.dirname(vocd_bin()))
TEMPLATE = os.path.join(SOURCE_DIR, "contrib", "plugin-template")


def run(args, env=None, timeout=300):
    cp = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0:
        raise AssertionError("%s failed (exit %d):\n%s\n%s" % (
            " ".join(args), cp.returncode, cp.stdout[-3000:], cp.stderr[-3000:]))
    return cp


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vocd-template-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        cls.build = os.path.join(cls.tmp, "template")
        run(["cmake", "--install", BUILD_DIR, "--prefix", cls.prefix])
        pcs = glob.glob(os.path.join(cls.prefix, "**", "pkgconfig", "vocd-plugin.pc"),
                        recursive=True)
        assert len(pcs) == 1, "installed vocd-plugin.pc: %r" % pcs
        cls.pc_dir = os.path.dirname(pcs[0])
        # Only the installed SDK: no path into the source tree may help the build.
        env = dict(os.environ, PKG_CONFIG_PATH=cls.pc_dir)
        env.pop("CFLAGS", None)
        env.pop("CPATH", None)
        env.pop("C_INCLUDE_PATH", None)
        cls.configure = run(["cmake", "-S", TEMPLATE, "-B", cls.build], env=env)
        cls.compile = run(["cmake", "--build", cls.build, "--verbose"], env=env)
        cls.vocd = os.path.join(cls.prefix, "bin", "vocd")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_installed_config_has_installed_paths(self):
        """cmake --install puts etc/vocd.yaml in place with the installed tree's paths: its
        plugins and profile inside the prefix, state under /var. vocd --check accepts it (on
        a copy whose state folders are moved into the test's folder, so that the check, which
        creates the plugins' folders, leaves the machine alone)."""
        path = os.path.join(self.prefix, "etc", "vocd", "vocd.yaml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        values = dict(re.findall(r"(?m)^\s*(data_dir|plugin_dir|profile|spool|maildir): (\S+)",
                                 text))
        self.assertEqual(values["data_dir"], "/var/lib/vocd")
        self.assertEqual(values["spool"], "/var/spool/vocd/hotline")
        self.assertEqual(values["maildir"], "/var/lib/vocd/mail/feedback")
        for key in ("plugin_dir", "profile"):
            self.assertTrue(values[key].startswith(self.prefix + "/"), values[key])
            self.assertTrue(os.path.exists(values[key]), values[key])
        for name in ("webhook", "hotline_csv", "email"):
            self.assertTrue(os.path.exists(os.path.join(values["plugin_dir"], name + ".so")))
        state = os.path.join(self.tmp, "state")
        for key in ("data_dir", "spool", "maildir"):
            text = text.replace(": " + values[key], ": " + state + values[key])
        copy = os.path.join(self.tmp, "installed-copy.yaml")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text)
        cp = subprocess.run([self.vocd, "--check", "-c", copy], capture_output=True, text=True,
                            timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)

    def test_built_against_the_installed_sdk(self):
        header = os.path.join(self.prefix, "include", "vocd", "plugin.h")
        self.assertTrue(os.path.isfile(header))
        with open(header) as a, open(os.path.join(SOURCE_DIR, "include", "vocd", "plugin.h")) as b:
            self.assertEqual(a.read(), b.read())
        # The compiler was pointed at the prefix, not at the source tree.
        inc = os.path.realpath(os.path.join(self.prefix, "include"))
        self.assertTrue(any(os.path.realpath(arg[len("-I"):] if arg.startswith("-I") else arg)
                            == inc for arg in self.compile.stdout.split()),
                        "the template was not compiled with -I/-isystem %s:\n%s"
                        % (inc, self.compile.stdout[-2000:]))
        self.assertNotIn(os.path.join(SOURCE_DIR, "include"), self.compile.stdout)
        so = os.path.join(self.build, "template.so")
        self.assertTrue(os.path.isfile(so))
        # Only the descriptor is exported.
        nm = run(["nm", "-D", "--defined-only", so]).stdout.split("\n")
        exported = sorted(line.split()[-1] for line in nm if line.strip()
                          and not line.split()[-1].startswith("_"))
        self.assertEqual(exported, ["voc_plugin_descriptor"])
        # plugindir from the installed .pc is inside the prefix.
        pd = run(["pkg-config", "--variable=plugindir", "vocd-plugin"],
                 env=dict(os.environ, PKG_CONFIG_PATH=self.pc_dir)).stdout.strip()
        self.assertTrue(os.path.realpath(pd).startswith(os.path.realpath(self.prefix)), pd)
        self.assertTrue(os.path.isfile(os.path.join(pd, "webhook.so")))

    def test_feeds_a_case_into_the_installed_daemon(self):
        cfg = {"plugin_dir": self.build,
               "plugins": [{"name": "template", "subject": "网站留言"}]}
        with Vocd(config_extra=cfg, binary=self.vocd) as v:
            self.assertRegex(v.log(), r"INFO plugin/template: taking feedback at POST "
                                      r"/template/feedback")
            text = "模板插件送来的反馈：快递太慢了。"
            status, _, body = v.request("POST", "/template/feedback", text.encode(), token=None,
                                        headers={"Content-Type": "text/plain; charset=utf-8"})
            self.assertEqual(status, 201, body)
            status, _, case = v.request("GET", "/api/v1/cases/%d" % body["id"])
            self.assertEqual(status, 200)
            self.assertEqual((case["channel"], case["text"], case["subject"]),
                             ("template", text, "网站留言"))

            status, _, body = v.request("GET", "/template/feedback", token=None)
            self.assertEqual((status, body["error"]["code"]), (405, "method_not_allowed"))
            status, _, body = v.request("POST", "/template/feedback", b"\xff\xfe", token=None)
            self.assertEqual((status, body["error"]["code"]), (400, "invalid_utf8"))
            # New settings on SIGHUP: without a subject, an empty post is not a case; the
            # core's own validation reaches the sender through the plugin.
            mark = v.log_mark()
            v.write_config({"plugin_dir": self.build, "plugins": [{"name": "template"}]})
            v.sighup()
            v.wait_log(r"INFO plugins: reloaded plugin=template", since=mark)
            status, _, body = v.request("POST", "/template/feedback", b"", token=None)
            self.assertEqual((status, body["error"]["code"]), (400, "missing_field"))
            status, _, metrics = v.request("GET", "/metrics", token=None)
            self.assertIn(b"vocd_plugin_template_submitted_total 2", metrics)

            # Its options are checked by the core like any other section.
            v.write_config({"plugin_dir": self.build,
                            "plugins": [{"name": "template", "max_lenght": "1KiB"}]})
            check = v.run("--check")
            self.assertEqual(check.returncode, 1)
            self.assertIn("unknown key 'plugins.template.max_lenght'", check.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)

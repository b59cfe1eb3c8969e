#!/usr/bin/python3
"""The `sidecar` CLI from a user's side: help, usage errors, ranges,
`status` (human and --json), `list`, the "not admitted" exit code, logging
(ISO-8601 timestamps, start banner, --log-file, the level from
DD_TRACE_SIDECAR_LOG_LEVEL). Each check runs the real binary.

    cli_check.py --binary path/to/sidecar
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from checks import check, verdict  # noqa: E402

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[sidecar pid=\d+ (error|warn|info|debug)\] ")



def run(binary, *args, env=None, user=None, timeout=30):
    cmd = [binary] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + cmd
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def wait_answer(binary, endpoint, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(binary, "ping", "--endpoint", endpoint)[0] == 0:
            return True
        time.sleep(0.05)
    return False


def help_and_usage(binary):
    for command in ("run", "ping", "stats", "status", "list"):
        rc, out, _ = run(binary, command, "--help")
        check(rc == 0 and out.startswith("usage: sidecar %s" % command), "%s --help is the command's help" % command)
        rc2, out2, _ = run(binary, "help", command)
        check(rc2 == 0 and out2 == out, "sidecar help %s prints the same" % command)
    rc, out, _ = run(binary, "run", "--help")
    for word in ("--agent-url", "--log-file", "--log-level", "DD_TRACE_AGENT_URL", "DD_TRACE_SIDECAR_LOG_LEVEL"):
        check(word in out, "run --help mentions %s" % word)
    check("--json" not in out, "run --help does not list status's --json")
    rc, out, _ = run(binary, "help")
    check(rc == 0 and "list" in out, "sidecar help lists the commands")
    rc, _, err = run(binary, "status", "--bogus")
    check(rc == 2 and "unknown option --bogus" in err, "unknown option: exit 2, said so (%r)" % err.strip())
    rc, _, err = run(binary, "-v")
    check(rc == 2 and "unknown option -v" in err, "-v is an unknown option (%r)" % err.strip())
    rc, _, err = run(binary, "run", "--json")
    check(rc == 2 and "not an option of run" in err, "an option of another command is refused (%r)" % err.strip())
    rc, _, err = run(binary, "status", "--timeout", "99999999999")
    check(rc == 2 and "from 1 to 600000" in err, "--timeout out of range: exit 2 with the range (%r)" % err.strip())
    rc, _, err = run(binary, "status", "--timeout", "-5")
    check(rc == 2, "a negative number is refused")
    rc, _, err = run(binary, "run", "--idle-timeout", "184467440737095516160")
    check(rc == 2, "a number past 64 bits is refused, not truncated")
    rc, _, err = run(binary, "status", "--timeout")
    check(rc == 2 and "needs a value" in err, "a missing value is said so (%r)" % err.strip())
    rc, _, err = run(binary, "run", "--agent-url", "ftp://x")
    check(rc == 2 and "--agent-url" in err, "a bad --agent-url: exit 2 (%r)" % err.strip())
    rc, _, err = run(binary, "frobnicate")
    check(rc == 2 and "unknown command" in err, "unknown command: exit 2")


def daemon_checks(binary, tmp):
    endpoint = "@sidecar-cli-check-%d" % os.getpid()
    log_path = os.path.join(tmp, "daemon.log")
    env = dict(os.environ, DD_TRACE_SIDECAR_LOG_LEVEL="debug")
    daemon = subprocess.Popen(
        [binary, "run", "--endpoint", endpoint, "--idle-timeout", "0", "--agent-url", "http://127.0.0.1:9",
         "--log-file", log_path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        check(wait_answer(binary, endpoint), "the daemon answers")
        rc, out, _ = run(binary, "status", "--endpoint", endpoint)
        check(rc == 0 and "running" in out and "agent" in out and "http://127.0.0.1:9" in out
              and "NOT reachable" in out and "clients" in out, "status: human summary\n" + out)
        rc, out, _ = run(binary, "status", "--endpoint", endpoint, "--json")
        doc = json.loads(out) if rc == 0 else {}
        check(doc.get("running") is True and doc.get("pid") == daemon.pid and doc.get("agent_reachable") is False
              and "traces" in doc, "status --json: one object with pid, agent, destinations")
        # The agent at 127.0.0.1:9 refuses: its last error, with the URL and an
        # ISO-8601 time, in status (human and JSON) and in the log.
        deadline = time.monotonic() + 10
        info = {}
        while time.monotonic() < deadline and "last_error" not in info:
            rc, out, _ = run(binary, "status", "--endpoint", endpoint, "--json")
            agents = json.loads(out).get("agents", []) if rc == 0 else []
            info = agents[0]["info"] if agents else {}
            time.sleep(0.05)
        err = info.get("last_error", {})
        check(err.get("message", "").startswith("GET http://127.0.0.1:9/info failed: ")
              and ISO_TIME.match(err.get("time", "")), "status --json: /info's last error with its URL (%r)" % err)
        rc, out, _ = run(binary, "status", "--endpoint", endpoint)
        check(re.search(r"/info +last answer never; last error \d{4}-\d\d-\d\dT[0-9:.]+Z: "
                        r"GET http://127\.0\.0\.1:9/info failed: ", out) is not None
              and re.search(r"traces +last delivery never", out) is not None,
              "status: last answer, last error and last delivery of the agent\n" + out)
        rc, out, err = run(binary, "status", "--endpoint", "@sidecar-cli-check-nobody-here", "--json")
        doc = json.loads(out) if out.strip() else {}
        check(rc == 3 and doc.get("running") is False and doc.get("state") == "not running",
              "status of nothing: exit 3, state 'not running'")
        if os.geteuid() == 0 and shutil.which("setpriv"):
            nobody = pwd.getpwnam("nobody").pw_uid
            copy = os.path.join(tmp, "sidecar")
            shutil.copy(binary, copy)
            os.chmod(tmp, 0o755)
            rc, out, err = run(copy, "status", "--endpoint", endpoint, user=nobody)
            check(rc == 4 and "does not admit this user" in err, "not admitted: exit 4, said so (%r)" % err.strip())
            rc, out, err = run(copy, "status", "--endpoint", "@sidecar-cli-check-nobody-here", user=nobody)
            check(rc == 3, "not running stays exit 3 for another user")
        else:
            print("skip not-admitted check (needs root and setpriv)")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    check(daemon.returncode == 0, "the daemon stops cleanly on SIGTERM")
    check(stderr == "", "with --log-file nothing goes to stderr (%r)" % stderr[:200])
    with open(log_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    check(lines and all(ISO.match(line) for line in lines), "every log line starts with an ISO-8601 UTC time")
    banner = [line for line in lines if "started: mode=daemon" in line]
    check(len(banner) == 1 and endpoint in banner[0] and "agent=http://127.0.0.1:9" in banner[0]
          and "pid=%d" % daemon.pid in banner[0] and "sidecar " in banner[0], "one start banner with endpoint, agent, pid")
    check(any(" debug] settings:" in line for line in lines), "DD_TRACE_SIDECAR_LOG_LEVEL=debug gives debug lines")
    check(any("flusher: GET http://127.0.0.1:9/info failed: " in line for line in lines),
          "a delivery failure in the log names the full URL")


def default_level(binary, tmp):
    """`run` logs its banner at the default level; error silences it."""
    for level, expect in ((None, True), ("error", False)):
        endpoint = "@sidecar-cli-check-level-%d-%s" % (os.getpid(), level)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_TRACE_SIDECAR_LOG")}
        if level:
            env["DD_TRACE_SIDECAR_LOG_LEVEL"] = level
        daemon = subprocess.Popen([binary, "run", "--endpoint", endpoint], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_answer(binary, endpoint)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        check(("started: mode=daemon" in err) == expect,
              "banner %s at level %s" % ("shown" if expect else "hidden", level or "default"))


def list_check(binary):
    # `list` finds this user's endpoints: a listener on this user's default
    # name scheme of a made-up version, as a thread-mode master would have.
    identity = str(os.geteuid())
    endpoint = "@sidecar-9.9.9-%s-%d" % (identity, os.getpid())
    daemon = subprocess.Popen([binary, "run", "--endpoint", endpoint], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_answer(binary, endpoint)
        rc, out, _ = run(binary, "list")
        row = [line for line in out.splitlines() if line.startswith(endpoint + " ")]
        check(rc == 0 and len(row) == 1 and "answering" in row[0] and str(daemon.pid) in row[0],
              "list shows the listener with its pid\n" + out)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sidecar-cli-")
    try:
        help_and_usage(args.binary)
        daemon_checks(args.binary, tmp)
        default_level(args.binary, tmp)
        if sys.platform.startswith("linux"):
            list_check(args.binary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The PHP-FPM leg (docs/runtime.md, docs/php.md): Debian's php8.2-fpm with the sidecar
extension, a root master and a www-data pool (pm = static, 3 workers),
requests through cgi-fcgi, the local intake (tests/intake) as the agent.

For each connection mode it runs every lifecycle — foreground master,
daemonized master, graceful reload (SIGUSR2), master SIGKILL while workers
finish requests, pcntl_fork() in the CLI — and checks that the intake got
exactly the traces and flag-evaluation counts the requests produced, that
exactly one listener exists (thread: in the master; subprocess: one sidecar
process) and none in a worker, that nobody hangs and no zombie is left.

ci/fpm-leg.sh builds the extension and prepares the directory this script
gets (--dir); run that, not this, by hand. Prints one line per mode and
lifecycle and exits 1 on any FAIL."""

import argparse
import base64
import collections
import grp
import json
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
import traceback

FPM = "php-fpm8.2"
PHP = "php8.2"
WORKERS = 3
EVALS_PER_REQUEST = 3  # request.php: 2 x "<scn>:checkout" + 1 x "<scn>:banner"
CONNECT_TIMEOUT_MS = 1000
FLAG_PATH = "/evp_proxy/v2/api/v2/flagevaluations"
LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix


def log(msg):
    print(msg, flush=True)


# ---- processes ---------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid) of a process, None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def cmdline_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def children_of(pid):
    return [p for p in all_pids() if (proc_stat(p) or ("", -1))[1] == pid]


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return not any(alive(p) for p in pids)


def kill_pids(pids, sig=signal.SIGQUIT, timeout=8.0):
    """Signals `pids`, waits, then SIGKILLs what is left. Returns the pids
    that needed SIGKILL."""
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    if wait_gone(pids, timeout):
        return []
    left = [p for p in pids if alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(left, 5)
    return left


# ---- sockets ---------------------------------------------------------------


def sidecar_listeners():
    """{inode: name} of every listening Unix socket named @sidecar-*."""
    found = {}
    with open("/proc/net/unix", encoding="ascii", errors="replace") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and int(parts[3], 16) & LISTENING and parts[7].startswith("@sidecar-"):
                found[int(parts[6])] = parts[7]
    return found


def socket_holders(inodes):
    """{inode: [pids holding a descriptor on it]}"""
    holders = collections.defaultdict(list)
    wanted = {"socket:[%d]" % i: i for i in inodes}
    for pid in all_pids():
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target in wanted:
                holders[wanted[target]].append(pid)
    return {i: sorted(set(p)) for i, p in holders.items()}


# ---- the leg -------------------------------------------------------------------


class Leg:
    def __init__(self, args):
        self.dir = args.dir
        self.src = args.src
        self.requests = args.requests
        self.sidecar_bin = os.path.join(self.dir, "sidecar")
        self.sidecar_launch = os.path.join(self.dir, args.sidecar_launch)
        self.allowed_uids = args.allowed_uids
        self.version = args.version
        self.results = []
        self.overhead = collections.defaultdict(dict)
        self.scenario_overhead = {}
        self.fpm_pids = set()  # every FPM master and worker seen, for cleanup
        sys.path.insert(0, os.path.join(self.src, "tests", "intake"))
        from intake_client import Intake  # noqa: E402 (path set just above)
        import traces  # noqa: E402

        self.traces = traces
        self.intake = Intake.start(self.dir, dogstatsd=True)
        self.agent_url = "http://127.0.0.1:%d" % self.intake.port
        # Read by the sidecar from the master's environment (docs/metrics.md).
        self.dogstatsd_url = "udp://127.0.0.1:%d" % self.intake.dogstatsd_port

    def close(self):
        self.intake.stop()

    # -- what arrived --

    def delivered(self, scn):
        """(traces per phase, flag evaluations per flag key, duplicate trace
        ids) that the intake received for scenario `scn`."""
        records = self.intake.requests()
        phases = collections.Counter()
        ids = collections.Counter()
        for rec in self.traces.trace_records(records, accepted_only=True):
            for trace in self.traces.decode_traces(base64.b64decode(rec["body_b64"])):
                resource = trace[0].get("resource", "")
                if resource.startswith(scn + "/"):
                    phases[resource[len(scn) + 1:]] += 1
                    ids[trace[0].get("trace_id")] += 1
        flags = collections.Counter()
        for rec in records:
            if rec["path"] != FLAG_PATH or not isinstance(rec["answered"], int) or rec["answered"] >= 300:
                continue
            for ev in json.loads(base64.b64decode(rec["body_b64"]))["flagEvaluations"]:
                key = ev["flag"]["key"]
                if key.startswith(scn + ":"):
                    flags[key] += ev["evaluation_count"]
        return phases, flags, sorted(i for i, n in ids.items() if n > 1)

    def metric_total(self, scn):
        """Sum of the fpm.requests counts tagged scn:<scn> that reached the
        DogStatsD receiver (request.php sends one per request)."""
        total = 0.0
        for rec in self.intake.requests("dogstatsd:"):
            for line in base64.b64decode(rec["body_b64"]).decode().split("\n"):
                name_value, _, rest = line.partition("|")
                if name_value.startswith("fpm.requests:") and rest == "c|#scn:" + scn:
                    total += float(name_value.split(":", 1)[1])
        return total

    def wait_metric(self, scn, want, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.metric_total(scn) < want and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.metric_total(scn)

    def wait_delivered(self, scn, traces, evals, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            phases, flags, dups = self.delivered(scn)
            if (sum(phases.values()) >= traces and sum(flags.values()) >= evals) or time.monotonic() > deadline:
                return phases, flags, dups
            time.sleep(0.1)

    # -- sidecar processes of this leg --

    def our_sidecars(self):
        return [p for p in all_pids() if alive(p) and exe_of(p) == self.sidecar_bin]

    def stop_sidecars(self):
        """SIGTERM: the sidecar flushes what it holds, then exits."""
        pids = self.our_sidecars()
        kill_pids(pids, signal.SIGTERM, timeout=10)
        return pids

    def record(self, mode, lifecycle, sent, traces, exp_evals, evals, problems, note="", scn=None):
        ok = not problems
        self.results.append((mode, lifecycle, sent, traces, exp_evals, evals, ok, problems, note,
                             self.scenario_overhead.get(scn, {})))
        log("  -> %s %s: requests %d, traces %d, evaluations %d/%d: %s%s"
            % (mode, lifecycle, sent, traces, evals, exp_evals, "PASS" if ok else "FAIL",
               "" if ok else " (" + "; ".join(problems) + ")"))

    # -- php settings --

    def ini(self, mode, agent_in_env=False, extra=None):
        d = {
            "extension": os.path.join(self.dir, "sidecar.so"),
            "sidecar.connection_mode": mode,
            # The CLI lifecycle runs php-cli, which starts nothing by default.
            "sidecar.cli_enabled": "1",
            "sidecar.sidecar_path": self.sidecar_launch,
            "sidecar.connect_timeout": str(CONNECT_TIMEOUT_MS),
        }
        # A pool of another user than the master has a sidecar of its own
        # and needs no allowed uids (docs/php.md): the leg sets none unless
        # told to (--allowed-uids) or a scenario does (two pool users).
        if self.allowed_uids:
            d["sidecar.allowed_uids"] = self.allowed_uids
        if not agent_in_env:
            d["sidecar.agent_url"] = self.agent_url
        d.update(extra or {})
        args = []
        for k, v in d.items():
            args += ["-d", "%s=%s" % (k, v)]
        return args

    def env(self, agent_in_env=False, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        env["DD_DOGSTATSD_URL"] = self.dogstatsd_url
        if agent_in_env:
            env["DD_TRACE_AGENT_URL"] = self.agent_url
        env.update(extra or {})
        return env


class Fpm:
    """One php-fpm8.2 instance of a scenario."""

    def __init__(self, leg, scn, mode, daemonize=False, agent_in_env=False, ini=None, env=None, pm="static",
                 user="www-data"):
        self.leg = leg
        self.pm = pm
        self.ini_extra = ini
        self.env_extra = env
        self.scn = scn
        self.mode = mode
        self.daemonize = daemonize
        self.agent_in_env = agent_in_env
        self.run = os.path.join(leg.dir, "run", scn)
        os.makedirs(self.run, exist_ok=True)
        os.chmod(self.run, 0o755)
        self.sock = os.path.join(self.run, "fpm.sock")
        self.pidfile = os.path.join(self.run, "fpm.pid")
        self.logfile = os.path.join(self.run, "fpm.log")
        self.www = os.path.join(leg.dir, "www")
        self.proc = None
        self.master = None
        with open(os.path.join(self.run, "fpm.conf"), "w") as f:
            f.write(
                "[global]\npid = %s\nerror_log = %s\ndaemonize = %s\n"
                "process_control_timeout = 5s\n"
                "[www]\nuser = %s\ngroup = %s\nlisten = %s\n"
                "pm = %s\npm.max_children = %d\ncatch_workers_output = yes\n"
                "pm.process_idle_timeout = 1s\n"
                # Workers run with clear_env = yes, and in subprocess mode a
                # worker starts the pool's sidecar, which reads where
                # DogStatsD is from its environment (docs/metrics.md).
                "env[DD_DOGSTATSD_URL] = %s\n"
                % (self.pidfile, self.logfile, "yes" if daemonize else "no", user,
                   grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name, self.sock, pm, WORKERS,
                   leg.dogstatsd_url))

    def start(self):
        cmd = [FPM, "-O", "-y", os.path.join(self.run, "fpm.conf")] + self.leg.ini(self.mode, self.agent_in_env, self.ini_extra)
        if not self.daemonize:
            cmd.insert(1, "-F")
        out = open(os.path.join(self.run, "fpm.out"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     env=self.leg.env(self.agent_in_env, self.env_extra), start_new_session=True)
        if self.daemonize:
            # The launcher exits once the real master is ready.
            rc = self.proc.wait(timeout=30)
            if rc != 0:
                raise RuntimeError("php-fpm launcher exited %d" % rc)
            with open(self.pidfile) as f:
                self.master = int(f.read())
        else:
            self.master = self.proc.pid
        self.leg.fpm_pids.add(self.master)
        self.wait_ready()

    def wait_ready(self, not_served_by=(), timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = self.request("ping.php", timeout=2)
                if r["pid"] not in not_served_by and (self.pm == "ondemand" or len(self.workers()) == WORKERS):
                    return r
            except Exception:  # not up yet
                pass
            time.sleep(0.05)
        raise RuntimeError("php-fpm does not answer; log:\n" + self.log_tail())

    def workers(self):
        pids = [p for p in children_of(self.master) if alive(p)]
        self.leg.fpm_pids.update(pids)
        return pids

    def request(self, script, query="", timeout=20):
        env = {"SCRIPT_FILENAME": os.path.join(self.www, script), "REQUEST_METHOD": "GET",
               "QUERY_STRING": query, "SCRIPT_NAME": "/" + script, "PATH": os.environ.get("PATH", "")}
        try:
            out = subprocess.run(["cgi-fcgi", "-bind", "-connect", self.sock], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            self.where_workers_wait()
            raise
        text = out.stdout.decode(errors="replace")
        body = text.split("\r\n\r\n", 1)[-1].strip()
        try:
            return json.loads(body.splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError("bad answer from %s: %r %r" % (script, text[-500:], out.stderr[-300:])) from None

    def where_workers_wait(self):
        """A request that does not end: where every worker (and the
        master) is, with gdb's backtraces of all their threads."""
        for pid in [self.master] + self.workers():
            try:
                with open("/proc/%d/wchan" % pid) as f:
                    wchan = f.read()
            except OSError:
                wchan = "?"
            log("  pid %d (%s) waits in %s" % (pid, cmdline_of(pid), wchan))
            try:
                bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30).stdout
                log("\n".join(l for l in bt.decode(errors="replace").splitlines() if l.startswith(("#", "Thread"))))
            except (OSError, subprocess.TimeoutExpired) as err:
                log("  no backtrace: %s" % err)
        log(self.log_tail())

    def stop(self):
        """Graceful stop (SIGQUIT): workers finish, MSHUTDOWN everywhere."""
        if self.master and alive(self.master):
            os.kill(self.master, signal.SIGQUIT)
        wait_gone([self.master], 15)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=30):
        text = ""
        for name in ("fpm.out", "fpm.log"):
            try:
                with open(os.path.join(self.run, name), errors="replace") as f:
                    text += "".join(f.readlines()[-n:])
            except OSError:
                pass
        return text


# ---- checks ------------------------------------------------------------------


def check_listeners(leg, mode, fpm, problems):
    """Exactly one sidecar listener among our processes: the FPM master's
    (thread) or, in subprocess mode, one sidecar process of the pool's user
    (www-data), on that user's name; none held by a worker. A subprocess
    sidecar of the master's own user (root), which sc_init() in the master
    starts or finds, may exist besides: it serves root's processes, which
    run no requests."""
    ours = {fpm.master} | set(fpm.workers()) | set(leg.our_sidecars())
    listeners = sidecar_listeners()
    holders = socket_holders(listeners)
    mine = {i: holders[i] for i in holders if set(holders[i]) & ours}
    sidecars = leg.our_sidecars()
    if mode != "thread":
        pool_name = "@sidecar-%s-%d" % (leg.version, pwd.getpwnam("www-data").pw_uid)
        root_name = "@sidecar-%s-0" % leg.version
        roots = {i: p for i, p in mine.items() if listeners[i] == root_name}
        mine = {i: p for i, p in mine.items() if i not in roots}
        sidecars = [p for p in sidecars if not any(p in h for h in roots.values())]
        if any(listeners[i] != pool_name for i in mine):
            problems.append("listeners %s, expected %s" % (sorted(listeners[i] for i in mine), pool_name))
    desc = ", ".join("%s held by %s" % (listeners[i], p) for i, p in mine.items()) or "none"
    if len(mine) != 1:
        problems.append("%d listeners (%s)" % (len(mine), desc))
        return desc
    (inode, pids), = mine.items()
    if mode == "thread":
        expected_name = "@sidecar-%s-0-%d" % (leg.version, fpm.master)
        if listeners[inode] != expected_name or pids != [fpm.master]:
            problems.append("listener %s held by %s, expected %s in master %d"
                            % (listeners[inode], pids, expected_name, fpm.master))
        if sidecars:
            problems.append("sidecar processes in thread mode: %s" % sidecars)
    else:
        if len(sidecars) != 1 or pids != sidecars:
            problems.append("sidecar processes %s, listener held by %s" % (sidecars, pids))
    return desc


def check_answers(answers, mode, master, problems, evals_per_request=EVALS_PER_REQUEST):
    """Every request: sent, counted, resolved mode, no listener in a worker."""
    for a in answers:
        if not a["sent"] or a["evals_ok"] != evals_per_request:
            problems.append("request in pid %d: sent=%s evals_ok=%s" % (a["pid"], a["sent"], a["evals_ok"]))
            break
    modes = sorted({a["mode"] for a in answers})
    if modes != [mode]:
        problems.append("modes seen: %s (reasons %s)" % (modes, sorted({a["reason"] for a in answers})))
    untrusted = sorted({a["pid"] for a in answers if (a.get("client") or {}).get("untrusted_servers", 0) != 0})
    if untrusted or any("untrusted_servers" not in (a.get("client") or {}) for a in answers):
        problems.append("untrusted servers seen by worker(s) %s, or not reported" % untrusted)
    in_workers = [a["pid"] for a in answers if a["listener_here"]]
    if in_workers:
        problems.append("listener in worker(s) %s" % sorted(set(in_workers)))
    if mode == "thread":
        masters = sorted({a["master_pid"] for a in answers})
        if masters != [master]:
            problems.append("workers' master %s, FPM master %d" % (masters, master))


def check_delivery(leg, scn, expected_phases, exp_evals, problems, timeout=10.0):
    phases, flags, dups = leg.wait_delivered(scn, sum(expected_phases.values()), exp_evals, timeout)
    got = dict(phases)
    if got != expected_phases:
        problems.append("traces by phase %s, expected %s" % (got, expected_phases))
    if dups:
        problems.append("duplicate trace ids %s" % dups[:5])
    if sum(flags.values()) != exp_evals:
        problems.append("evaluations %s, expected %d" % (dict(flags), exp_evals))
    return sum(phases.values()), sum(flags.values())


def check_zombies(pids, problems):
    """No zombie among `pids` or among the children of a live one of them."""
    zombies = []
    for p in all_pids():
        st = proc_stat(p)
        if st and st[0] == "Z" and (st[1] in pids and alive(st[1])):
            zombies.append((p, st[1], cmdline_of(p)))
    if zombies:
        problems.append("zombies %s" % zombies)


def effective_mode(mode):
    return "thread" if mode == "thread" else "subprocess"


def note_overhead(leg, mode, scn, answers, extra=()):
    """Time spent in the extension per request, from the answers: the calls
    inside the script (hrtime around them) and RSHUTDOWN (each worker's
    maxima so far: they cover every request of the worker but its last).
    Wall times include preemption on a loaded machine; the context-switch
    counts separate it: "unpreempted" maxima leave out the samples during
    which the process was preempted, "blocked" counts samples during which
    it waited (a voluntary switch), which the enqueue budget rules out."""
    answers = list(answers)
    ext = [a["extension"] for a in answers + list(extra)]
    last_ext = {}
    for a in answers + list(extra):
        last_ext[a["pid"]] = a["extension"]
    o = {
        "calls": max((a["calls_ns"] for a in answers), default=0),
        "calls_unpreempted": max((a["calls_ns"] for a in answers if not a["calls_preempted"]), default=0),
        "calls_blocked": sum(1 for a in answers if a["calls_blocked"]),
        "rshutdown": max((e["rshutdown_ns_max"] for e in ext), default=0),
        "rshutdown_unpreempted": max((e["rshutdown_ns_max_unpreempted"] for e in ext), default=0),
        "rshutdown_blocked": sum(e["rshutdown_blocked"] for e in last_ext.values()),
        "requests": len(answers),
    }
    leg.scenario_overhead[scn] = o
    m = leg.overhead[mode]
    for k, v in o.items():
        m[k] = m.get(k, 0) + v if k.endswith("blocked") or k == "requests" else max(m.get(k, 0), v)
    m.setdefault("calls_all", []).extend(a["calls_ns"] for a in answers)


def sample_workers(fpm, n=2 * WORKERS):
    """request.php-free stats from several workers (RSHUTDOWN maxima)."""
    out = []
    for _ in range(n):
        try:
            out.append(fpm.request("stats.php"))
        except Exception:  # a stats probe is best effort
            pass
    return out


# ---- lifecycles ------------------------------------------------------------------


def run_requests(fpm, scn, phase, n, **extra):
    query = "scn=%s&phase=%s" % (scn, phase)
    for k, v in extra.items():
        query += "&%s=%s" % (k, v)
    return [fpm.request("request.php", query) for _ in range(n)]


def lifecycle_simple(leg, mode, daemonize):
    lifecycle = "daemonized" if daemonize else "foreground"
    # The daemonized master reads the agent from DD_TRACE_AGENT_URL, the
    # foreground one from sidecar.agent_url: both paths are exercised.
    run_and_check(leg, mode, lifecycle, effective_mode(mode), daemonize=daemonize, agent_in_env=daemonize)


def lifecycle_kill_switch(leg, mode):
    """Flag-evaluation counts switched off: in the master's environment
    (thread) — the workers run with clear_env = yes — or by INI `Off` over
    an environment that says true (the other modes)."""
    if mode == "thread":
        ini, env = None, {"DD_FLAGGING_EVALUATION_COUNTS_ENABLED": "false"}
    else:
        ini, env = {"sidecar.flag_evaluation_counts": "Off"}, {"DD_FLAGGING_EVALUATION_COUNTS_ENABLED": "true"}
    run_and_check(leg, mode, "counts disabled", effective_mode(mode), ini=ini, env=env, evals_per_request=0)


def lifecycle_fallback(leg, mode):
    """auto with a sidecar binary that cannot run: thread mode, one
    listener in the master."""
    run_and_check(leg, mode, "auto fallback", "thread",
                  ini={"sidecar.sidecar_path": os.path.join(leg.dir, "no-such-sidecar")})


def run_and_check(leg, mode, lifecycle, expect_mode, daemonize=False, agent_in_env=False, ini=None, env=None,
                  evals_per_request=EVALS_PER_REQUEST):
    scn = "%s-%s" % (mode, lifecycle.replace(" ", "-"))
    problems = []
    fpm = Fpm(leg, scn, mode, daemonize=daemonize, agent_in_env=agent_in_env, ini=ini, env=env)
    fpm.start()
    answers = run_requests(fpm, scn, "main", leg.requests)
    check_answers(answers, expect_mode, fpm.master, problems, evals_per_request)
    stats = fpm.request("stats.php")
    desc = check_listeners(leg, expect_mode, fpm, problems)
    note_overhead(leg, mode, scn, answers, sample_workers(fpm))
    handled = (stats.get("sidecar") or {}).get("actions", {})
    log("  %s: mode %s (%s); listener: %s; sidecar handled %s traces, %s evaluation batches"
        % (scn, stats.get("mode"), stats.get("reason"), desc, handled.get("trace"), handled.get("flag_evaluations")))
    pids = {fpm.master} | set(fpm.workers())
    check_zombies(pids, problems)  # e.g. a spawn's intermediate child not reaped
    fpm.stop()
    n = leg.requests
    traces, evals = check_delivery(leg, scn, {"main": n}, n * evals_per_request, problems)
    leg.stop_sidecars()
    check_zombies(pids | {os.getpid()}, problems)
    # One fpm.requests count per request, aggregated by the sidecar and
    # delivered at the latest by its final flush: the total is exact.
    metric = leg.wait_metric(scn, n)
    if metric != n:
        problems.append("fpm.requests total %g at the DogStatsD receiver, expected %d" % (metric, n))
    leg.record(mode, lifecycle, n, traces, n * evals_per_request, evals, problems, scn=scn)


def pool_sidecars(leg, user="www-data"):
    """Our sidecar processes running as the pool's user."""
    uid = pwd.getpwnam(user).pw_uid
    out = []
    for p in leg.our_sidecars():
        try:
            with open("/proc/%d/status" % p) as f:
                uids = next(l for l in f if l.startswith("Uid:")).split()
            if int(uids[2]) == uid:
                out.append(p)
        except (OSError, StopIteration):
            pass
    return out


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.1)
    return cond()


def lifecycle_sidecar_gone(leg, mode):
    """An ondemand pool whose sidecar goes away three times: by itself
    (every worker idles out, then the sidecar passes its idle timeout), by
    SIGKILL, and by SIGKILL again after a graceful reload (USR2) of the
    master. Each time the next request of a worker starts another one under
    the pool's user; every trace and evaluation arrives exactly once. The
    request that starts a sidecar pays for the start in its RSHUTDOWN
    (shown in the overhead summary)."""
    scn = "%s-sidecar-gone" % mode
    problems = []
    fpm = Fpm(leg, scn, mode, pm="ondemand", ini={"sidecar.idle_timeout": "1500"})
    fpm.start()
    n = max(3, leg.requests // 3)
    answers = run_requests(fpm, scn, "first", n)
    first = pool_sidecars(leg)
    # Workers idle out after 1 s; with no connection left the sidecar exits
    # 1.5 s later, after its final flush.
    if not wait_for(lambda: not pool_sidecars(leg), 15):
        problems.append("the pool's sidecar %s did not exit when idle" % first)
    answers += run_requests(fpm, scn, "after-idle", n)
    second = pool_sidecars(leg)
    leg.wait_delivered(scn, 2 * n, 2 * n * EVALS_PER_REQUEST)
    for p in second:
        os.kill(p, signal.SIGKILL)
    wait_gone(second, 5)
    answers += run_requests(fpm, scn, "after-kill", n)
    third = pool_sidecars(leg)
    # A reload re-executes the master (MINIT again) and replaces the
    # workers; the pool's sidecar dies meanwhile (SIGKILL, or its idle
    # exit): the new generation starts the next one.
    leg.wait_delivered(scn, 3 * n, 3 * n * EVALS_PER_REQUEST)
    old_workers = fpm.workers()
    os.kill(fpm.master, signal.SIGUSR2)
    fpm.wait_ready(not_served_by=old_workers, timeout=30)
    for p in pool_sidecars(leg):
        os.kill(p, signal.SIGKILL)
    wait_gone(third, 5)
    answers += run_requests(fpm, scn, "after-reload", n)
    fourth = pool_sidecars(leg)
    check_answers(answers, effective_mode(mode), fpm.master, problems)
    seen = [first, second, third, fourth]
    if any(len(s) != 1 for s in seen) or len({p for s in seen for p in s}) != 4:
        problems.append("pool sidecars: first %s, after idle %s, after kill %s, after reload %s" % tuple(seen))
    desc = check_listeners(leg, effective_mode(mode), fpm, problems)
    note_overhead(leg, mode, scn, answers, sample_workers(fpm))
    log("  %s: pool sidecars %s -> idle exit -> %s -> SIGKILL -> %s -> reload, SIGKILL -> %s; listener: %s"
        % (scn, first, second, third, fourth, desc))
    pids = {fpm.master} | set(fpm.workers())
    fpm.stop()
    phases = {"first": n, "after-idle": n, "after-kill": n, "after-reload": n}
    traces, evals = check_delivery(leg, scn, phases, 4 * n * EVALS_PER_REQUEST, problems)
    leg.stop_sidecars()
    check_zombies(pids | {os.getpid()}, problems)
    leg.record(mode, "sidecar gone", 4 * n, traces, 4 * n * EVALS_PER_REQUEST, evals, problems, scn=scn)


def lifecycle_reload(leg, mode):
    scn = "%s-reload" % mode
    problems = []
    fpm = Fpm(leg, scn, mode)
    fpm.start()
    n1 = leg.requests // 2
    before = run_requests(fpm, scn, "before", n1)
    old_workers = fpm.workers()
    os.kill(fpm.master, signal.SIGUSR2)
    fpm.wait_ready(not_served_by=old_workers, timeout=30)
    if not wait_gone(old_workers, 10):
        problems.append("old workers still alive after the reload")
    n2 = leg.requests - n1
    after = run_requests(fpm, scn, "after", n2)
    check_answers(before + after, effective_mode(mode), fpm.master, problems)
    desc = check_listeners(leg, effective_mode(mode), fpm, problems)
    note_overhead(leg, mode, scn, before + after, sample_workers(fpm))
    log("  %s: master %d re-executed; old workers %s, new %s; listener: %s"
        % (scn, fpm.master, old_workers, fpm.workers(), desc))
    pids = {fpm.master} | set(fpm.workers())
    check_zombies(pids, problems)
    fpm.stop()
    exp_evals = (n1 + n2) * EVALS_PER_REQUEST
    traces, evals = check_delivery(leg, scn, {"before": n1, "after": n2}, exp_evals, problems)
    leg.stop_sidecars()
    check_zombies(pids | {os.getpid()}, problems)
    leg.record(mode, "reload (USR2)", n1 + n2, traces, exp_evals, evals, problems, scn=scn)


def lifecycle_master_killed(leg, mode):
    """SIGKILL of the master while workers are in the middle of requests.
    Before the kill everything is delivered; after it, what the orphaned
    workers produce is delivered or counted as dropped, and no request
    waits longer than the connect timeout allows."""
    scn = "%s-sigkill" % mode
    problems = []
    fpm = Fpm(leg, scn, mode)
    fpm.start()
    n_pre = WORKERS * 2
    pre = run_requests(fpm, scn, "pre", n_pre)
    check_answers(pre, effective_mode(mode), fpm.master, problems)
    # Let the pre-kill traces reach the intake (thread mode: the master
    # holds them until its flush interval, and dies with what it holds).
    leg.wait_delivered(scn, n_pre, n_pre * EVALS_PER_REQUEST, timeout=10)
    workers = fpm.workers()
    sleep_ms, flush_ms = 1500, 3000
    slow = []
    # In flight at the kill: like real requests, they only hand their data
    # over in RSHUTDOWN, which is where they find the master gone (thread
    # mode: the worker promotes itself there). The later requests flush
    # synchronously, so their answers carry each worker's final counters.
    threads = [threading.Thread(target=lambda: slow.append(
        (time.monotonic(), fpm.request("request.php", "scn=%s&phase=during&sleep_ms=%d" % (scn, sleep_ms)),
         time.monotonic())))
        for _ in range(WORKERS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)
    os.kill(fpm.master, signal.SIGKILL)
    fpm.proc.wait()
    for t in threads:
        t.join(timeout=sleep_ms / 1000 + 15)
    slowest_ms = (max((end for _, _, end in slow), default=time.monotonic()) - started) * 1000
    if len(slow) != WORKERS:
        problems.append("%d of %d requests in flight at the kill answered" % (len(slow), WORKERS))
    # Orphans keep serving on the inherited FastCGI socket.
    # "after": plain requests (thread mode: the promotion happens in their
    # RSHUTDOWN); "final": synchronous flushes whose answers carry each
    # worker's final counters.
    t0 = time.monotonic()
    after = run_requests(fpm, scn, "after", WORKERS * 2)
    after_ms = (time.monotonic() - t0) * 1000 / len(after)
    after += run_requests(fpm, scn, "final", WORKERS * 2, flush_ms=flush_ms)
    budget_ms = sleep_ms + CONNECT_TIMEOUT_MS + 2000
    if slowest_ms > budget_ms:
        problems.append("requests in flight took %.0f ms (> %d ms)" % (slowest_ms, budget_ms))
    post = [a for _, a, _ in slow] + after
    # Every post-kill trace is delivered or counted as dropped: per request
    # when send failed, per worker in the client counters otherwise.
    not_sent = sum(1 for a in post if not a["sent"])
    last_by_pid = {}
    for a in post:
        last_by_pid[a["pid"]] = a
    dropped_later = sum(a["client"]["dropped_in_flight"] for a in last_by_pid.values())
    promoted = sorted(a["pid"] for a in last_by_pid.values() if a["promotions"])
    unflushed = sum(1 for a in post if a["flushed"] is False)
    note_overhead(leg, mode, scn, pre + post)
    check_zombies(set(workers), problems)
    orphan_listeners = sum(1 for pids in socket_holders(sidecar_listeners()).values() if set(pids) & set(workers))
    log("  %s: master %d killed; in-flight requests done after %.0f ms, later ones %.0f ms each; "
        "promoted workers %s, listeners in them %d; not sent %d, dropped in flight %d, flushes failed %d"
        % (scn, fpm.master, slowest_ms, after_ms, promoted, orphan_listeners, not_sent, dropped_later, unflushed))
    leftover = kill_pids(workers, signal.SIGQUIT, timeout=10)
    if leftover:
        problems.append("workers %s needed SIGKILL" % leftover)
    produced = len(post)
    traces, evals = 0, 0
    phases, flags, dups = leg.wait_delivered(scn, n_pre + produced - not_sent,
                                             (n_pre + produced) * EVALS_PER_REQUEST, timeout=15)
    traces = sum(phases.values())
    evals = sum(flags.values())
    post_delivered = sum(n for phase, n in phases.items() if phase != "pre")
    if phases.get("pre", 0) != n_pre:
        problems.append("pre-kill traces %d of %d" % (phases.get("pre", 0), n_pre))
    if post_delivered + not_sent + dropped_later < produced or post_delivered > produced - not_sent:
        problems.append("post-kill: produced %d, delivered %d, counted dropped %d"
                        % (produced, post_delivered, not_sent + dropped_later))
    if dups:
        problems.append("duplicate trace ids %s" % dups[:5])
    exp_evals = (n_pre + produced) * EVALS_PER_REQUEST
    if evals > exp_evals or (evals < exp_evals and not (not_sent or dropped_later)):
        problems.append("evaluations %d, expected %d" % (evals, exp_evals))
    leg.stop_sidecars()
    check_zombies({fpm.master} | set(workers) | {os.getpid()}, problems)
    leg.record(mode, "master SIGKILL", n_pre + produced, traces, exp_evals, evals, problems,
               note="%d post-kill, %d dropped" % (produced, not_sent + dropped_later), scn=scn)


def lifecycle_worker_killed(leg, mode):
    """SIGKILL of every worker in the middle of a request (asleep before
    its work, as a worker waiting on a database would be). What each worker
    had handed over in earlier requests is delivered -- frames it wrote
    stay readable for the sidecar after it died, and a frame it left half
    written is sent by nobody and counted by nobody (the sidecar closes that
    connection); the master replaces the workers, which serve on; the
    requests in flight produced nothing. No duplicates, no zombies, the
    listener (sidecar or master) undisturbed."""
    scn = "%s-worker-killed" % mode
    problems = []
    fpm = Fpm(leg, scn, mode)
    fpm.start()
    n = WORKERS * 3
    answers = run_requests(fpm, scn, "before", n)
    victims = fpm.workers()
    cut = []

    def doomed():
        try:
            fpm.request("request.php", "scn=%s&phase=killed&sleep_ms=5000" % scn)
        except RuntimeError:
            cut.append(1)  # no answer: its worker was killed

    threads = [threading.Thread(target=doomed, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(victims, 5)
    fpm.wait_ready(not_served_by=victims, timeout=30)
    answers += run_requests(fpm, scn, "after", n)
    for t in threads:
        t.join(timeout=10)
    check_answers(answers, effective_mode(mode), fpm.master, problems)
    desc = check_listeners(leg, effective_mode(mode), fpm, problems)
    log("  %s: workers %s SIGKILLed mid-request (%d requests cut); new workers %s; listener: %s"
        % (scn, victims, len(cut), fpm.workers(), desc))
    pids = {fpm.master} | set(fpm.workers())
    fpm.stop()
    traces, evals = check_delivery(leg, scn, {"before": n, "after": n},
                                   2 * n * EVALS_PER_REQUEST, problems)
    phases, _, dups = leg.delivered(scn)
    if phases.get("killed", 0):
        problems.append("requests killed before their work delivered %d traces" % phases["killed"])
    if dups:
        problems.append("duplicate trace ids %s" % dups[:5])
    leg.stop_sidecars()
    check_zombies(pids | set(victims) | {os.getpid()}, problems)
    leg.record(mode, "worker SIGKILL", 2 * n, traces, 2 * n * EVALS_PER_REQUEST, evals, problems, scn=scn)


def lifecycle_cli_fork(leg, mode):
    scn = "%s-cli" % mode
    problems = []
    reports = os.path.join(leg.dir, "run", scn)
    os.makedirs(reports, exist_ok=True)
    cmd = [PHP] + leg.ini(mode) + [os.path.join(leg.dir, "www", "fork.php"), scn, reports]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=leg.env(), timeout=60,
                         check=False)
    if out.returncode != 0:
        problems.append("php exited %d: %s" % (out.returncode, out.stdout.decode(errors="replace")[-300:]))
    who = ["parent", "child", "grandchild", "orphan"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(os.path.exists(os.path.join(reports, w + ".json")) for w in who):
        time.sleep(0.05)
    got = {}
    for w in who:
        try:
            with open(os.path.join(reports, w + ".json")) as f:
                got[w] = json.load(f)
        except OSError:
            problems.append("no report from the %s" % w)
    for w, r in got.items():
        if not r["sent"] or not r["counted"] or not r["flushed"]:
            problems.append("%s: sent=%s counted=%s flushed=%s" % (w, r["sent"], r["counted"], r["flushed"]))
    orphan = got.get("orphan")
    if orphan and effective_mode(mode) == "thread" and not (orphan["promotions"] == 1 and orphan["listener_here"]):
        problems.append("orphan not promoted: %s" % {k: orphan[k] for k in ("promotions", "listener_here", "master_pid")})
    # The orphan exits after its report (MSHUTDOWN delivers its listener's data).
    if orphan:
        wait_gone([orphan["pid"]], 15)
    traces, evals = check_delivery(leg, scn, {w: 1 for w in who}, len(who), problems)
    leg.stop_sidecars()
    log("  %s: %s" % (scn, ", ".join("%s pid %d%s" % (w, r["pid"], " promoted" if r["promotions"] else "")
                                    for w, r in got.items())))
    leg.record(mode, "cli pcntl_fork", len(who), traces, len(who), evals, problems)


# ---- main ------------------------------------------------------------------------


def lifecycle_two_users(leg, mode):
    """Two root masters whose pools run as different users (www-data and
    nobody), requests to both at once: each pool has its own sidecar, of its
    own user, and every trace and evaluation of both arrives exactly once
    (docs/php.md, "who starts a sidecar")."""
    problems = []
    users = ["www-data", "nobody"]
    scns = ["%s-two-users-%s" % (mode, u) for u in users]
    # Each master allows its own pool's uid, as an operator would: master
    # A (www-data, 33) starts first, master B (nobody, 65534) later.
    fpms = [Fpm(leg, scn, mode, user=u, ini={"sidecar.allowed_uids": str(pwd.getpwnam(u).pw_uid)})
            for scn, u in zip(scns, users)]
    n = leg.requests
    traces = evals = 0
    try:
        for fpm in fpms:
            fpm.start()
        answers = [[], []]

        def load(i):
            answers[i].extend(run_requests(fpms[i], scns[i], "main", n))

        threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, fpm in enumerate(fpms):
            check_answers(answers[i], effective_mode(mode), fpm.master, problems)
        per_user = {u: pool_sidecars(leg, u) for u in users}
        if any(len(p) != 1 for p in per_user.values()):
            problems.append("sidecars per pool user %s, expected one each" % per_user)
        # Each pool's sidecar, as its workers see it: of their own user,
        # nobody rejected.
        for u, fpm in zip(users, fpms):
            st = fpm.request("stats.php")
            sc = st.get("sidecar") or {}
            rejected = (sc.get("connections") or {}).get("rejected")
            if sc.get("pid") not in per_user[u] or rejected != 0:
                problems.append("%s pool: sidecar pid %s (expected %s), rejected %s"
                                % (u, sc.get("pid"), per_user[u], rejected))
        log("  %s: sidecars per pool user %s" % (scns[0], per_user))
        pids = set()
        for fpm in fpms:
            pids |= {fpm.master} | set(fpm.workers())
            fpm.stop()
        for scn in scns:
            t, e = check_delivery(leg, scn, {"main": n}, n * EVALS_PER_REQUEST, problems)
            traces += t
            evals += e
        leg.stop_sidecars()
        check_zombies(pids | {os.getpid()}, problems)
    finally:
        for fpm in fpms:
            fpm.stop()
    leg.record(mode, "two pool users", 2 * n, traces, 2 * n * EVALS_PER_REQUEST, evals, problems, scn=scns[0])


def lifecycle_two_agents(leg, mode):
    """Two FPM masters (same user, subprocess mode) share one sidecar, each
    with its own agent (sidecar.agent_url): every trace and evaluation of a
    master reaches its own agent, exactly once, and nothing reaches the
    other's (docs/delivery.md, "Routing"). Requests go to both at once."""
    from intake_client import Intake  # noqa: E402 (path set by Leg)

    other = Intake.start(leg.dir)
    problems = []
    scns = ["%s-two-agents-1" % mode, "%s-two-agents-2" % mode]
    urls = [leg.agent_url, "http://127.0.0.1:%d" % other.port]
    intakes = [leg.intake, other]
    fpms = [Fpm(leg, scn, mode, ini={"sidecar.agent_url": url}) for scn, url in zip(scns, urls)]
    n = leg.requests
    try:
        for fpm in fpms:
            fpm.start()
        answers = [[], []]

        def load(i):
            answers[i].extend(run_requests(fpms[i], scns[i], "main", n))

        threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, fpm in enumerate(fpms):
            check_answers(answers[i], "subprocess", fpm.master, problems)
        sidecars = pool_sidecars(leg)
        if len(sidecars) != 1:
            problems.append("%d sidecar processes of the pools' user for two masters" % len(sidecars))
        pids = set()
        for fpm in fpms:
            pids |= {fpm.master} | set(fpm.workers())
            fpm.stop()
        traces = evals = 0
        for i in range(2):
            # Each agent: its master's data, all of it ...
            mine = []
            leg.intake = intakes[i]
            t, e = check_delivery(leg, scns[i], {"main": n}, n * EVALS_PER_REQUEST, mine)
            problems += ["agent %d: %s" % (i + 1, p) for p in mine]
            traces += t
            evals += e
            # ... and nothing of the other master's.
            phases, flags, _ = leg.delivered(scns[1 - i])
            if sum(phases.values()) or sum(flags.values()):
                problems.append("agent %d got %d traces and %d evaluations of master %d"
                                % (i + 1, sum(phases.values()), sum(flags.values()), 2 - i))
        leg.intake = intakes[0]
        leg.stop_sidecars()
        check_zombies(pids | {os.getpid()}, problems)
    finally:
        leg.intake = intakes[0]
        for fpm in fpms:
            fpm.stop()
        other.stop()
    leg.record(mode, "two agents", 2 * n, traces, 2 * n * EVALS_PER_REQUEST, evals, problems, scn=scns[0])


def cleanup_leftovers(leg):
    """Anything of ours still running after a failed scenario (FPM renames
    its processes, so they are known by pid and checked by executable)."""
    fpm = [p for p in leg.fpm_pids if alive(p) and (exe_of(p) or "").startswith("/usr/sbin/php-fpm")]
    mine = fpm + [p for p in all_pids() if alive(p) and (exe_of(p) == leg.sidecar_bin or leg.dir in cmdline_of(p))]
    mine = [p for p in mine if p not in (os.getpid(), leg.intake.process.pid)]
    if mine:
        log("  cleaning up leftover processes %s" % mine)
        kill_pids(sorted(set(mine)), signal.SIGKILL, timeout=5)
    leg.fpm_pids.clear()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="prepared by ci/fpm-leg.sh")
    ap.add_argument("--src", required=True, help="source tree (tests/intake)")
    ap.add_argument("--version", required=True, help="sidecar version (endpoint names)")
    ap.add_argument("--modes", default="thread,subprocess,auto")
    ap.add_argument("--lifecycles",
                    default="foreground,daemonized,reload,sigkill,workerkill,cli,killswitch,fallback,sidecargone,"
                            "twoagents,twousers")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--sidecar-launch", default="sidecar",
                    help="file name in --dir that sidecar.sidecar_path points at")
    ap.add_argument("--allowed-uids", default="",
                    help="sidecar.allowed_uids of every master (default none)")
    args = ap.parse_args()
    leg = Leg(args)
    lifecycles = [
        ("foreground", lambda m: lifecycle_simple(leg, m, False)),
        ("daemonized", lambda m: lifecycle_simple(leg, m, True)),
        ("reload", lambda m: lifecycle_reload(leg, m)),
        ("sigkill", lambda m: lifecycle_master_killed(leg, m)),
        ("workerkill", lambda m: lifecycle_worker_killed(leg, m)),
        ("cli", lambda m: lifecycle_cli_fork(leg, m)),
        ("killswitch", lambda m: lifecycle_kill_switch(leg, m)),
        ("fallback", lambda m: lifecycle_fallback(leg, m)),  # auto only
        ("sidecargone", lambda m: lifecycle_sidecar_gone(leg, m)),  # not thread
        ("twoagents", lambda m: lifecycle_two_agents(leg, m)),  # subprocess only
        ("twousers", lambda m: lifecycle_two_users(leg, m)),  # not thread
    ]
    try:
        for mode in args.modes.split(","):
            for name, fn in lifecycles:
                if (name not in args.lifecycles.split(",") or (name == "fallback" and mode != "auto")
                        or (name in ("sidecargone", "twousers") and mode == "thread")
                        or (name == "twoagents" and mode != "subprocess")):
                    continue
                log("== %s / %s" % (mode, name))
                try:
                    fn(mode)
                except Exception as err:  # one broken scenario must not hide the others
                    leg.record(mode, name, 0, 0, 0, 0, ["%s: %s" % (type(err).__name__, err)])
                    log(traceback.format_exc())
                cleanup_leftovers(leg)
    finally:
        leg.close()
    print_summary(leg)
    return 0 if all(r[6] for r in leg.results) else 1


def print_summary(leg):
    log("")
    log("%-11s %-15s %8s %7s %12s  %-17s %-17s %s" % ("mode", "lifecycle", "requests", "traces", "evaluations",
                                                   "calls-us (unpr.)", "rshutdn-us (unpr.)", "result"))
    for mode, lifecycle, sent, traces, exp_evals, evals, ok, problems, note, o in leg.results:
        log("%-11s %-15s %8d %7d %5d/%-6d  %7.1f (%6.1f)  %7.1f (%6.1f)  %s%s"
            % (mode, lifecycle, sent, traces, evals, exp_evals, o.get("calls", 0) / 1e3,
               o.get("calls_unpreempted", 0) / 1e3, o.get("rshutdown", 0) / 1e3,
               o.get("rshutdown_unpreempted", 0) / 1e3, "PASS" if ok else "FAIL", "  " + note if note else ""))
    log("")
    log("Extension time per request, worst case: 'calls' = 3 flag evaluations + 1 trace inside the script,")
    log("'rshutdown' = the request-end flush; (unpr.) = worst among samples the process was not preempted in.")
    for mode, o in leg.overhead.items():
        calls = sorted(o.get("calls_all", [])) or [0]
        log("  %-11s calls median %5.1f us, worst %7.1f us (unpreempted %6.1f us, blocked %d times); "
            "rshutdown worst %7.1f us (unpreempted %6.1f us, blocked %d times); %d requests"
            % (mode, calls[len(calls) // 2] / 1e3, o["calls"] / 1e3, o["calls_unpreempted"] / 1e3,
               o["calls_blocked"], o["rshutdown"] / 1e3, o["rshutdown_unpreempted"] / 1e3,
               o["rshutdown_blocked"], o["requests"]))


if __name__ == "__main__":
    sys.exit(main())

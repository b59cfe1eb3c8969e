#!/usr/bin/python3
"""Runs the IIS-like pool (test_iis_pool.exe, under Wine) against the local
intake and checks what arrived, independently of the project's code (traces
decoded with python3-msgpack, tests/intake/traces.py).

    iis_pool_check.py --emulator /usr/bin/wine --binary test_iis_pool.exe
                      --mode subprocess|thread [--seed N]

What must hold (docs/windows.md):
  - nothing arrives twice, nothing arrives that was not sent;
  - every trace a worker saw acknowledged (the flush barrier answered by
    the same sidecar or master that had its connection) arrives, unless
    that acknowledging process was killed before delivering it;
  - every trace that did not arrive is accounted for: sent by a worker
    that was killed before its acknowledgement, or acknowledged by a killed
    master, or sent to a killed master (the flush then failed), or counted
    as dropped by the client;
  - flag-evaluation counts per worker lie between what was acknowledged by
    surviving processes and what was sent;
  - the run was not vacuous: kills happened (masters too, in thread mode),
    and most traces arrived.
Exit 0 when all hold."""

import argparse
import base64
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "intake"))

import traces  # noqa: E402  (tests/intake)
from intake_client import Intake  # noqa: E402

FLAGEVALS = "/evp_proxy/v2/api/v2/flagevaluations"
errors = []


def expect(cond, message):
    if not cond:
        errors.append(message)


def read_manager(path):
    started, killed, exits, masters_killed = {}, set(), {}, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] == "worker":
                started[int(words[1])] = int(words[2])
            elif words[0] == "killed":
                killed.add(int(words[1]))
                masters_killed += words[2] == "master"
            elif words[0] == "exit":
                exits[int(words[1])] = int(words[2])
            elif words[0] == "error":
                errors.append("manager: " + line.strip())
    return started, killed, exits, masters_killed


def read_worker(path):
    """sent ids, acks {id: (server, flag)}, unacked {id: fields}, masters."""
    sent, acks, unacked, masters = [], {}, {}, set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] == "sent":
                sent.append(int(words[1]))
            elif words[0] == "ack":
                acks[int(words[1])] = (int(words[2]), words[3] == "1", int(words[4]), int(words[5]))
            elif words[0] == "unacked":
                unacked[int(words[1])] = dict(w.split("=", 1) for w in words[2:])
            elif words[0] == "master":
                masters.add(int(words[1]))
            elif words[0] == "start" and "listener=1" in line:
                masters.add(int(words[1]))
    return sent, acks, unacked, masters


def delivered_flag_counts(records):
    counts = collections.Counter()
    for record in records:
        if record["path"] != FLAGEVALS or not traces.is_accepted(record):
            continue
        body = json.loads(base64.b64decode(record["body_b64"]))
        for event in body["flagEvaluations"]:
            counts[event["flag"]["key"]] += event["evaluation_count"]
    return counts


def check(mode, workdir, records):
    started, killed, exits, masters_killed = read_manager(os.path.join(workdir, "manager.log"))
    summary = traces.summarize(records, accepted_only=True)
    expect(not summary["decode_errors"], "decode errors: %s" % summary["decode_errors"][:3])
    expect(not summary["count_mismatches"], "trace count header mismatches")
    expect(not summary["duplicate_trace_ids"], "traces delivered twice: %s" % summary["duplicate_trace_ids"][:10])
    delivered = set(i for i in summary["first_span_trace_ids"] if i is not None)
    flag_counts = delivered_flag_counts(records)

    all_sent = set()
    masters = set()
    windows = collections.defaultdict(list)  # server pid -> answer windows
    lost = collections.Counter()
    strict = 0
    for index, pid in sorted(started.items()):
        worker_killed = pid in killed
        log = os.path.join(workdir, "worker-%d.log" % index)
        # A worker killed while Wine was still starting it (the manager kills
        # 150-400 ms after a start; a loaded machine starts slower) never
        # opened its log: it sent nothing. A surviving worker must have one.
        if worker_killed and not os.path.exists(log):
            continue
        sent, acks, unacked, worker_masters = read_worker(log)
        masters |= worker_masters
        all_sent.update(sent)
        expect(worker_killed or exits.get(pid) == 0,
               "worker %d (pid %d) neither killed nor exited cleanly (%s)" % (index, pid, exits.get(pid)))
        flag_low = 0
        for trace_id in sent:
            if trace_id in acks:
                server, flag_sent, t_start, t_end = acks[trace_id]
                windows[server].append((t_start, t_end))
                if server in killed:
                    if trace_id not in delivered:
                        lost["acknowledged by a master that was then killed"] += 1
                    continue
                strict += 1
                flag_low += flag_sent
                expect(trace_id in delivered,
                       "trace %#x acknowledged by pid %d (never killed) did not arrive" % (trace_id, server))
            elif trace_id in unacked:
                if trace_id in delivered:
                    continue
                fields = unacked[trace_id]
                if int(fields.get("dropped", "0")) > 0:
                    lost["dropped and counted by the client"] += 1
                elif int(fields.get("server", "0")) in killed:
                    lost["in flight to a master that was killed"] += 1
                elif int(fields.get("server", "0")) == 0 and killed:
                    lost["sent while no master answered (after a kill)"] += 1
                else:
                    errors.append("trace %#x lost without a kill or a counted drop: %s" % (trace_id, fields))
            elif trace_id not in delivered:
                expect(worker_killed, "trace %#x of surviving worker %d has no outcome" % (trace_id, index))
                lost["in flight in a killed worker"] += 1
        flag = "iis-flag-%d" % index
        got = flag_counts.get(flag, 0)
        expect(flag_low <= got <= len(sent),
               "%s: %d evaluations delivered, expected between %d and %d" % (flag, got, flag_low, len(sent)))

    unknown = delivered - all_sent
    expect(not unknown, "traces nobody sent: %s" % sorted(unknown)[:10])
    worker_kills = len(killed) - masters_killed
    print("%s pool: %d workers started, %d killed (%d masters); %d masters seen; "
          "%d traces sent, %d delivered, %d acknowledged by survivors (all must arrive)"
          % (mode, len(started), len(killed), masters_killed, len(masters),
             len(all_sent), len(delivered & all_sent), strict))
    for reason, n in sorted(lost.items()):
        print("  not delivered, %s: %d" % (reason, n))
    expect(worker_kills >= 4, "only %d workers killed" % worker_kills)
    expect(strict > 0 and len(delivered) >= len(all_sent) // 2, "too little arrived to mean anything")
    check_one_server_at_a_time(windows)
    if mode == "thread":
        expect(masters_killed >= 3, "only %d masters killed" % masters_killed)
        expect(len(masters) >= masters_killed + 1, "%d masters seen for %d master kills" % (len(masters), masters_killed))
    else:
        expect(not masters, "a subprocess-mode worker ran a listener: %s" % masters)
        expect(len(windows) == 1, "%d sidecars answered: %s" % (len(windows), sorted(windows)))


def check_one_server_at_a_time(windows):
    """Never two masters (or sidecars) at once: once B has certainly
    answered (the end of one of its answer windows), A never answers again
    (the start of one of its windows is later). Windows are [before the
    request, after the barrier's answer] on one machine-wide clock."""
    spans = {pid: (min(e for _, e in w), max(s for s, _ in w)) for pid, w in windows.items()}
    order = sorted(spans, key=lambda pid: spans[pid][0])
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            expect(spans[a][1] <= spans[b][0],
                   "pid %d answered %.1f ms after pid %d had answered: two servers at once"
                   % (a, (spans[a][1] - spans[b][0]) / 1000.0, b))
    print("servers in the order they answered: %s" % " ".join(str(p) for p in order))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", default="")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--mode", choices=("subprocess", "thread"), required=True)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print("seed %d (--seed %d to replay the same choices)" % (seed, seed))

    with tempfile.TemporaryDirectory(prefix="iis-pool-") as tmp:
        workdir = os.path.join(tmp, "pool")
        os.mkdir(workdir)
        with Intake.start(tmp) as intake:
            env = dict(os.environ, DD_TRACE_AGENT_URL=intake.url)
            command = ([args.emulator] if args.emulator else []) + [
                args.binary, "manager", args.mode, workdir, str(seed)]
            proc = subprocess.run(command, env=env, timeout=600)
            manager_log = os.path.join(workdir, "manager.log")
            if proc.returncode != 0:
                errors.append("the pool manager failed (exit %d)" % proc.returncode)
            if os.path.exists(manager_log):
                check(args.mode, workdir, intake.requests())
            else:
                errors.append("the pool manager wrote no log")
            if errors and os.path.exists(manager_log):
                with open(manager_log, encoding="utf-8", errors="replace") as f:
                    sys.stderr.write(f.read()[-3000:])
    for e in errors[:30]:
        print("FAIL: %s" % e, file=sys.stderr)
    print("iis pool (%s): %s" % (args.mode, "FAIL" if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

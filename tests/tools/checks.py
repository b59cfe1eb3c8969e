"""Named checks for the outsider-style test scripts (tests/cli, tests/php):
each prints "ok"/"FAIL" with what it checked; verdict() is the exit code."""

FAILURES = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        FAILURES.append(what)


def verdict():
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("PASS")
    return 0


def must(cmd, **kw):
    """Runs `cmd`; its output (stdout and stderr) when it exits 0, otherwise
    prints the output's tail and exits the test as failed."""
    import subprocess

    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        print(r.stdout[-3000:])
        raise SystemExit("FAIL: %s exited %d" % (" ".join(cmd), r.returncode))
    return r.stdout

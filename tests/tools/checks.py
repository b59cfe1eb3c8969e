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

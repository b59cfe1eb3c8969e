#!/usr/bin/python3
"""The PHP extension built against an install, from the command line
(docs/php.md): config.m4 finds libsidecar with pkg-config; `php -v` starts
no sidecar (the CLI policy); `php --ri sidecar` shows the values in effect
and where they came from; with DD_TRACE_CLI_ENABLED a script's trace and
exposures (sidecar_send_exposures) reach the local intake; sidecar.log_level
turns the library's warnings down.

    php_check.py --build BUILD --source SRC
Exits 77 (skipped) when php8.2-dev is not installed.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from intake_client import Intake  # noqa: E402
from checks import check, must, verdict  # noqa: E402

PHP, PHPIZE, PHP_CONFIG = "php8.2", "phpize8.2", "php-config8.2"



def sockets(directory):
    return glob.glob(os.path.join(directory, "*.sock"))


def telemetry_events(intake, service):
    """[(request_type, payload)] of the telemetry bodies of `service`, in
    seq_id order."""
    bodies = []
    for rec in intake.requests("/telemetry/proxy/api/v2/apmtelemetry"):
        body = json.loads(Intake.body(rec))
        if body["application"]["service_name"] == service:
            bodies.append(body)
    bodies.sort(key=lambda b: b["seq_id"])
    return [(i["request_type"], i["payload"]) for b in bodies
            for i in (b["payload"] if b["request_type"] == "message-batch" else [b])]


def check_telemetry(php, env, source, intake):
    """sidecar_telemetry_* (bindings/php/sidecar_telemetry.c): what a script
    reports reaches the intake's telemetry endpoint as the v2 requests."""
    script = os.path.join(source, "bindings", "php", "tests", "telemetry.php")
    r = subprocess.run(php + ["-d", "sidecar.service=php-telemetry", script], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    check(r.returncode == 0 and '{"ok":true,"bad":false,"threw":4,"flushed":true}' in r.stdout,
          "telemetry.php: events queued, an empty log refused, malformed arguments throw (%r %r)"
          % (r.stdout.strip(), r.stderr[-300:]))
    deadline = time.monotonic() + 30
    events = []
    while time.monotonic() < deadline and "app-closing" not in [t for t, _ in events]:
        events = telemetry_events(intake, "php-telemetry")
        time.sleep(0.1)
    of = lambda kind: [p for t, p in events if t == kind]  # noqa: E731
    deps = sorted((d["name"], d.get("version")) for p in of("app-dependencies-loaded") for d in p["dependencies"])
    check(deps == [("guzzlehttp/guzzle", "7.8.1"), ("monolog/monolog", None), ("psr/log", None)],
          "sidecar_telemetry_dependencies reached app-dependencies-loaded (%r)" % deps)
    integrations = [i for p in of("app-integrations-change") for i in p["integrations"]]
    check(integrations == [{"name": "pdo", "enabled": True, "version": "8.2"},
                           {"name": "curl", "enabled": False, "compatible": True}],
          "sidecar_telemetry_integrations reached app-integrations-change (%r)" % integrations)
    logs = [g for p in of("logs") for g in p["logs"]]
    check(logs == [{"message": "pdo: slow query\n#0 query()", "level": "WARN", "count": 1, "tags": "integration:pdo"}],
          "sidecar_telemetry_log reached logs (%r)" % logs)
    series = [s for p in of("generate-metrics") for s in p["series"]]
    spans = sum(s["points"][0][1] for s in series if s["metric"] == "spans_created")
    gauge = [s["points"][0][1] for s in series if s["metric"] == "workers" and s["namespace"] == "general"]
    check(spans == 10 and gauge == [3.5], "sidecar_telemetry_metric reached generate-metrics (%r)" % series)
    values = sorted(v for p in of("distributions") for s in p["series"] for v in s["points"])
    check(values == [0, 1, 2, 3, 4], "sidecar_telemetry_metric reached distributions (%r)" % values)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    args = ap.parse_args()
    if not all(shutil.which(t) for t in (PHP, PHPIZE, PHP_CONFIG)):
        print("SKIP: php8.2-cli and php8.2-dev are not installed (ci/fpm-leg.sh installs them)")
        return 77
    tmp = tempfile.mkdtemp(prefix="sidecar-php-")
    intake = None
    try:
        prefix = os.path.join(tmp, "prefix")
        must(["cmake", "--install", args.build, "--prefix", prefix])
        ext = os.path.join(tmp, "ext")
        os.makedirs(ext)
        src = os.path.join(args.source, "bindings", "php")
        for name in os.listdir(src):
            if name.endswith((".c", ".h", ".m4")):
                shutil.copy(os.path.join(src, name), ext)
        must([PHPIZE], cwd=ext)
        out = must(["./configure", "--with-php-config=" + PHP_CONFIG, "--with-sidecar=" + prefix], cwd=ext)
        check("checking for sidecar with pkg-config... 0." in out, "config.m4 found the install with pkg-config")
        must(["make"], cwd=ext)
        so = os.path.join(ext, "modules", "sidecar.so")
        php = [PHP, "-n", "-d", "extension=" + so]

        ep = os.path.join(tmp, "ep")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        env.update({"DD_TRACE_SIDECAR_ENDPOINT_DIR": ep, "DD_TRACE_SIDECAR_IDLE_TIMEOUT": "1000"})

        r = subprocess.run(php + ["-v"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check(r.returncode == 0 and r.stderr == "", "php -v runs quietly with the extension")
        check(not os.path.exists(ep) or not sockets(ep), "php -v starts no sidecar (no endpoint in %s)" % ep)
        r = subprocess.run(php + ["--ri", "sidecar"], env=env, stdout=subprocess.PIPE, text=True)
        check("not started for the command line" in r.stdout, "php --ri says why the CLI has no sidecar")

        intake = Intake.start(tmp, dogstatsd=True)
        cli_env = dict(env, DD_TRACE_CLI_ENABLED="true", DD_TRACE_AGENT_URL=intake.url,
                       DD_TRACE_SIDECAR_CONNECTION_MODE="subprocess",
                       DD_DOGSTATSD_URL="udp://127.0.0.1:%d" % intake.dogstatsd_port,
                       DD_TRACE_SIDECAR_TELEMETRY_CLOSING_DELAY="0")
        r = subprocess.run(php + ["-d", "sidecar.service=php-check", "-d", "sidecar.rss_cap=268435456",
                                  "--ri", "sidecar"], env=cli_env,
                           stdout=subprocess.PIPE, text=True)
        ri = r.stdout
        check("sidecar support => enabled" in ri, "DD_TRACE_CLI_ENABLED=true enables it on the CLI")
        check("service => php-check (INI)" in ri, "php --ri: service from INI")
        check("agent => %s (env)" % intake.url in ri, "php --ri: the agent URL from the environment")
        check("sidecar binary => %s" % prefix in ri, "php --ri: the daemon of the install, found next to the library")
        check("connection mode (configured) => subprocess (env)" in ri, "php --ri: mode from the environment")
        check("sidecar memory cap => 268435456 bytes (256.0 MiB) (INI)" in ri,
              "php --ri: the sidecar's memory cap from INI")

        script = os.path.join(args.source, "bindings", "php", "tests", "exposures.php")
        r = subprocess.run(php + [script, "php-check-cli"], env=cli_env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        check(r.returncode == 0 and '"sent":true,"exposed":true,"threw":true,"flushed":true' in r.stdout,
              "exposures.php: trace and exposures queued, a malformed exposure throws (%r %r)"
              % (r.stdout.strip(), r.stderr[-300:]))
        deadline = time.monotonic() + 30
        exposures = traces = []
        while time.monotonic() < deadline:
            exposures = intake.requests("/evp_proxy/v2/api/v2/exposures")
            traces = intake.requests("/v0.4/traces")
            if exposures and traces:
                break
            time.sleep(0.1)
        body = b"".join(Intake.body(rec) for rec in exposures)
        check(b"checkout" in body and b"search" in body and b"user-2" in body,
              "both exposures reached the intake's exposures endpoint")
        check(any(b"php-check-cli" in Intake.body(rec) for rec in traces), "the trace reached the intake")

        script = os.path.join(args.source, "bindings", "php", "tests", "metrics.php")
        r = subprocess.run(php + ["-d", "sidecar.service=php-metrics", script], env=cli_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        check(r.returncode == 0 and '{"ok":true,"bad":false,"threw":true,"flushed":true,"sent":54,"invalid":1}'
              in r.stdout, "metrics.php: points queued, a bad name refused, an unknown type throws (%r %r)"
              % (r.stdout.strip(), r.stderr[-300:]))
        want = {"php.check.requests:50|c|#canary,route:/a", "php.check.gauge:7.5|g", "php.check.users:alice|s",
                "php.check.users:bob|s", "php.check.latency:12.5|d|@0.5"}
        deadline = time.monotonic() + 30
        lines = set()
        while time.monotonic() < deadline and not want <= lines:
            lines = {line for rec in intake.requests("dogstatsd:") for line in Intake.body(rec).decode().split("\n")}
            time.sleep(0.1)
        check(want <= lines, "sidecar_metric points reached the DogStatsD receiver aggregated (%r)" % sorted(lines)[:8])
        deadline = time.monotonic() + 30
        types = []
        while time.monotonic() < deadline and "app-closing" not in types:
            types = []
            for rec in intake.requests("/telemetry/proxy/api/v2/apmtelemetry"):
                body = json.loads(Intake.body(rec))
                if body["application"]["service_name"] == "php-metrics":
                    items = body["payload"] if body["request_type"] == "message-batch" else [body]
                    types += [i["request_type"] for i in items]
            time.sleep(0.1)
        check(types[:1] == ["app-started"] and types.count("app-started") == 1 and types[-1:] == ["app-closing"],
              "the extension's app-started and app-closing reached the telemetry endpoint (%r)" % types)

        check_telemetry(php, cli_env, args.source, intake)

        bad = ["-d", "sidecar.path=" + os.path.join(tmp, "no-such-sidecar"),
               "-d", "sidecar.endpoint_dir=" + os.path.join(tmp, "ep2"), "-r", "echo 1;"]
        r = subprocess.run(php + bad, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check("cannot start" in r.stderr, "a missing daemon is a warning at the default level")
        r = subprocess.run(php + ["-d", "sidecar.log_level=error"] + bad, env=cli_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check("[sidecar" not in r.stderr, "sidecar.log_level=error silences it (%r)" % r.stderr[-300:])

        # The sidecars started here exit on their idle timeout.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sockets(ep):
            time.sleep(0.1)
        check(not sockets(ep), "the started sidecar left on its idle timeout")
    finally:
        if intake is not None:
            intake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The install as a user gets it (docs/install.md), checked from outside.

1. `cmake --install BUILD --prefix T/staged`, then the tree is moved to
   T/moved: nothing may depend on the prefix the files were installed to.
2. Builds tests/install/consumer/consumer.c with `pkg-config --cflags --libs
   sidecar` and, as a CMake project, with find_package(sidecar) against
   sidecar::sidecar and sidecar::sidecar_static - using only installed files.
3. Runs each consumer in subprocess mode with the local intake as the agent
   and no DD_TRACE_SIDECAR_PATH for the shared builds: the runtime must find
   the installed daemon next to the library and start it. Each sends one
   trace under its own service name; all must reach the intake.
4. Checks libsidecar.so exports the public API only (no internal sc_*, no
   nanopb pb_*).

    install_check.py --build BUILD --source SRC [--keep]
"""

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
from intake_client import Intake  # noqa: E402
import traces  # noqa: E402

TRACE_PATH = "/v0.4/traces"


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if result.returncode != 0:
        print(result.stdout)
        raise SystemExit("FAIL: %s exited %d" % (cmd[0], result.returncode))
    return result.stdout


def public_symbols(header):
    """Function names the header declares with SC_API."""
    names = set()
    with open(header, encoding="utf-8") as f:
        for line in f:
            if line.startswith("SC_API "):
                names.add(line.split("(")[0].split()[-1].lstrip("*"))
    return names


def check_exports(libdir, header):
    lib = os.path.join(libdir, "libsidecar.so")
    out = run(["nm", "-D", "--defined-only", lib])
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    public = public_symbols(header)
    extra = sorted(exported - public)
    missing = sorted(public - exported)
    print("libsidecar.so exports %d symbols; the header declares %d" % (len(exported), len(public)))
    if extra or missing:
        raise SystemExit("FAIL: exported but not public: %s; public but not exported: %s" % (extra, missing))


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def run_consumer(binary, service, env, tmp, moved):
    out = run([binary, service], env=env, cwd=tmp).strip()
    print(out)
    fields = dict(item.split("=", 1) for item in out.split())
    pid = int(fields["sidecar_pid"])
    if not fields["sidecar_path"].startswith(moved):
        raise SystemExit("FAIL: %s started %s, not the daemon of the install" % (binary, fields["sidecar_path"]))
    return pid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="sidecar-install-")
    os.chmod(tmp, 0o700)
    sidecar_pids = []
    intake = None
    try:
        staged = os.path.join(tmp, "staged")
        moved = os.path.join(tmp, "moved")
        run(["cmake", "--install", args.build, "--prefix", staged])
        os.rename(staged, moved)
        pcs = glob.glob(os.path.join(moved, "**", "pkgconfig", "sidecar.pc"), recursive=True)
        if len(pcs) != 1:
            raise SystemExit("FAIL: expected one installed sidecar.pc, found %s" % pcs)
        pc_env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
        libdir = run(["pkg-config", "--variable=libdir", "sidecar"], env=pc_env).strip()
        check_exports(libdir, os.path.join(moved, "include", "sidecar.h"))

        # Sources are copied out: the consumers must not see the source tree.
        src = os.path.join(tmp, "consumer-src")
        shutil.copytree(os.path.join(HERE, "consumer"), src)

        cc = os.environ.get("CC", "cc")
        flags = run(["pkg-config", "--cflags", "--libs", "sidecar"], env=pc_env).split()
        pc_consumer = os.path.join(tmp, "consumer_pkgconfig")
        run([cc, "-o", pc_consumer, os.path.join(src, "consumer.c")] + flags + ["-Wl,-rpath," + libdir])

        cmake_build = os.path.join(tmp, "consumer-cmake")
        run(["cmake", "-S", src, "-B", cmake_build, "-DCMAKE_PREFIX_PATH=" + moved, "-DCMAKE_BUILD_TYPE=Release"])
        run(["cmake", "--build", cmake_build])
        with open(os.path.join(cmake_build, "daemon.txt"), encoding="utf-8") as f:
            daemon = f.read().strip()

        intake = Intake.start(tmp)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        base_env.update({
            "DD_TRACE_AGENT_URL": intake.url,
            "DD_TRACE_SIDECAR_CONNECTION_MODE": "subprocess",
            "DD_TRACE_SIDECAR_IDLE_TIMEOUT": "1000",
        })
        consumers = [
            ("pkgconfig", pc_consumer, None),
            ("cmake-shared", os.path.join(cmake_build, "consumer_shared"), None),
            # A static program has no library file to look next to: it is
            # told where the daemon is (sidecar_DAEMON from the package).
            ("cmake-static", os.path.join(cmake_build, "consumer_static"), daemon),
        ]
        services = []
        for name, binary, daemon_path in consumers:
            env = dict(base_env)
            # Each its own endpoint, so each starts its own sidecar.
            env["DD_TRACE_SIDECAR_ENDPOINT_DIR"] = os.path.join(tmp, "ep-" + name)
            if daemon_path:
                env["DD_TRACE_SIDECAR_PATH"] = daemon_path
            if name == "pkgconfig":
                # Logging settings reach the sidecar the runtime starts.
                env["DD_TRACE_SIDECAR_LOG_FILE"] = os.path.join(tmp, "spawned.log")
                env["DD_TRACE_SIDECAR_LOG_LEVEL"] = "info"
            service = "consumer-" + name
            sidecar_pids.append(run_consumer(binary, service, env, tmp, moved))
            services.append(service)

        deadline = time.monotonic() + 30
        seen = set()
        while time.monotonic() < deadline and not set(services) <= seen:
            for record in traces.trace_records(intake.requests(TRACE_PATH)):
                for trace in traces.decode_traces(Intake.body(record)):
                    seen.update(span.get("service") for span in trace)
            time.sleep(0.1)
        for service in services:
            print("%-24s %s" % (service, "reached the intake" if service in seen else "MISSING"))
        if not set(services) <= seen:
            raise SystemExit("FAIL: traces missing at the intake")
        # The sidecars exit on their idle timeout once their client is gone.
        for pid in sidecar_pids:
            if not wait_gone(pid, 15):
                raise SystemExit("FAIL: sidecar %d did not exit on its idle timeout" % pid)
        sidecar_pids = []
        with open(os.path.join(tmp, "spawned.log"), encoding="utf-8", errors="replace") as f:
            spawned_log = f.read()
        if "started: mode=subprocess" not in spawned_log:
            raise SystemExit("FAIL: the started sidecar did not log to DD_TRACE_SIDECAR_LOG_FILE:\n" + spawned_log)
        print("the started sidecar logged its banner to DD_TRACE_SIDECAR_LOG_FILE")
        print("PASS: installed, moved, linked with pkg-config and find_package; %d traces delivered" % len(services))
    finally:
        for pid in sidecar_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if intake is not None:
            intake.stop()
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

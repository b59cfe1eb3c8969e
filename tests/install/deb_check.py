#!/usr/bin/python3
"""The Debian package from `cpack -G DEB` (docs/install.md): it holds the
daemon, both libraries, the header, sidecar.pc, the CMake package and the
systemd unit example; its dependencies are computed; extracted anywhere
(dpkg-deb -x, no system install) the daemon runs and sidecar.pc resolves
into the extracted tree.

    deb_check.py --build BUILD
Exits 77 (skipped) without dpkg-deb.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from checks import check, must, verdict  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    if not shutil.which("dpkg-deb") or not shutil.which("cpack"):
        print("SKIP: dpkg-deb or cpack missing")
        return 77
    tmp = tempfile.mkdtemp(prefix="sidecar-deb-")
    try:
        must(["cpack", "-G", "DEB", "-B", tmp, "--config", os.path.join(args.build, "CPackConfig.cmake")])
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        check(len(debs) == 1, "cpack made one .deb: %s" % [os.path.basename(d) for d in debs])
        deb = debs[0]
        info = must(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"])
        print(info)
        check("libuv1" in info and "libcurl4" in info, "Depends lists libuv1 and libcurl4 (dpkg-shlibdeps)")
        files = [line.split()[5] for line in must(["dpkg-deb", "-c", deb]).splitlines()]
        for suffix in ("/bin/sidecar", "/include/sidecar.h", "/libsidecar.so.0", "/libsidecar.a",
                       "/pkgconfig/sidecar.pc", "/cmake/sidecar/sidecarConfig.cmake",
                       "/examples/sidecar.service", "/doc/sidecar/LICENSE", "/doc/sidecar/settings.md"):
            check(any(f.endswith(suffix) for f in files), "the package holds ...%s" % suffix)
        root = os.path.join(tmp, "root")
        must(["dpkg-deb", "-x", deb, root])
        daemon = glob.glob(os.path.join(root, "**", "bin", "sidecar"), recursive=True)
        version = must([daemon[0], "--version"]).strip() if daemon else ""
        check(version.startswith("sidecar "), "the extracted daemon runs: %r" % version)
        pcs = glob.glob(os.path.join(root, "**", "sidecar.pc"), recursive=True)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0])) if pcs else None
        incdir = must(["pkg-config", "--variable=includedir", "sidecar"], env=env).strip() if pcs else ""
        check(os.path.isfile(os.path.join(incdir, "sidecar.h")) and os.path.realpath(incdir).startswith(root),
              "sidecar.pc resolves into the extracted tree (%s)" % incdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""docs/settings.md lists every setting the code has (and nothing it lacks).

From the sources, collects:
  - environment variables: every "DD_*" string literal in src/, include/ and
    bindings/php/ (getenv / uv_os_getenv arguments and the macros naming
    them);
  - INI entries: every "sidecar.*" string in bindings/php/*.c;
  - CLI flags: every "--*" option name in src/cli/*.c;
  - C option fields: the members of sc_config_t and sc_client_options_t in
    include/sidecar.h (those of the client as `client.<name>`).
Each must appear in docs/settings.md in backticks. Environment variables and
INI entries named in the table must exist in the code.

    settings_check.py --source SRC
"""

import argparse
import glob
import os
import re
import sys


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def strip_comments(c_text):
    """C text without comments and #include lines."""
    text = re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", c_text), flags=re.S)
    return re.sub(r"^#include[^\n]*", "", text, flags=re.M)


def struct_fields(header, name):
    body = re.search(r"typedef struct %s \{(.*?)\} %s_t;" % (name, name), header, re.S)
    if body is None:
        raise SystemExit("FAIL: struct %s not found in sidecar.h" % name)
    fields = []
    for decl in strip_comments(body.group(1)).split(";"):
        decl = decl.strip()
        if not decl or decl.startswith("sc_client_options_t"):
            continue
        m = re.search(r"(\w+)\s*(\[[^\]]*\])?$", decl)
        if m:
            fields.append(m.group(1))
    return fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    src = ap.parse_args().source
    doc = read(os.path.join(src, "docs", "settings.md"))
    documented = set(re.findall(r"`([^`]+)`", doc))

    code_files = [p for pattern in ("src/**/*.c", "src/**/*.h", "bindings/php/*.c")
                  for p in glob.glob(os.path.join(src, pattern), recursive=True)]
    env = set()
    ini = set()
    for path in code_files:
        text = strip_comments(read(path))
        env.update(re.findall(r'"(DD_[A-Z0-9_]+)"', text))
        if "bindings" in path:
            ini.update(re.findall(r'"(sidecar\.[a-z_]+)"', text))
    flags = set()
    for path in glob.glob(os.path.join(src, "src", "cli", "*.c")):
        flags.update(re.findall(r'\{"(--[a-z][a-z-]*)"', strip_comments(read(path))))
    header = read(os.path.join(src, "include", "sidecar.h"))
    fields = set(struct_fields(header, "sc_config"))
    fields.update("client." + f for f in struct_fields(header, "sc_client_options"))

    problems = []
    for kind, names in (("environment variable", env), ("INI entry", ini), ("sidecar flag", flags),
                        ("C field", fields)):
        for name in sorted(names - documented):
            problems.append("%s %s is in the code but not in docs/settings.md" % (kind, name))
        print("%-22s %3d in the code, all documented: %s" % (kind, len(names), names <= documented))
    for name in sorted(n for n in documented if re.fullmatch(r"DD_[A-Z0-9_]*[A-Z0-9]", n)):
        if name not in env:
            problems.append("docs/settings.md lists %s, which no code reads" % name)
    for name in sorted(n for n in documented if re.fullmatch(r"sidecar\.[a-z_]+", n)):
        if name not in ini:
            problems.append("docs/settings.md lists INI %s, which the extension does not register" % name)
    if len(env) < 15 or len(ini) < 15 or len(flags) < 15 or len(fields) < 20:
        problems.append("suspiciously few settings found (%d env, %d INI, %d flags, %d fields): "
                        "has the code moved?" % (len(env), len(ini), len(flags), len(fields)))
    for p in problems:
        print("FAIL", p)
    if problems:
        return 1
    print("PASS: every setting is in docs/settings.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

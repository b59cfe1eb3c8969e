#!/bin/sh
# The PHP-FPM leg (docs/php.md): builds bindings/php against a build tree's
# libsidecar.so with Debian's php8.2-dev, then runs ci/fpm/leg.py: a root
# php-fpm8.2 master with a www-data pool, every lifecycle of docs/runtime.md, in
# each connection mode, against the local intake.
#
#   ci/fpm-leg.sh <build-dir> [leg.py options, e.g. --modes thread]
#
# Exit: 0 all PASS, 1 a FAIL, 77 skipped (not root, or php8.2-fpm cannot be
# installed). Installs missing packages with apt-get (idempotent).
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 <build-dir> [leg options]" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${SIDECAR_PYTHON:-/usr/bin/python3}

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the FPM leg needs root (a root master with www-data workers)"
    exit 77
fi

PACKAGES="php8.2-cli php8.2-fpm php8.2-dev libfcgi-bin"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $missing >/tmp/fpm-leg-apt.log 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends $missing >/tmp/fpm-leg-apt.log 2>&1; then
            tail -5 /tmp/fpm-leg-apt.log
            echo "SKIP: cannot install$missing"
            exit 77
        fi
    fi
fi
getent passwd www-data >/dev/null || {
    echo "FAIL: no www-data user"
    exit 1
}

LIB=$BUILD/src/libsidecar.so.0
BIN=$BUILD/src/sidecar
for f in "$LIB" "$BIN"; do
    [ -e "$f" ] || {
        echo "FAIL: $f missing: build $BUILD first"
        exit 1
    }
done
VERSION=$("$BIN" --version | awk '{print $2}')

# Everything a www-data worker reads lives in a fresh world-readable
# directory: the extension, libsidecar.so (its run path) and the binary.
T=$(mktemp -d /tmp/sidecar-fpm-leg.XXXXXX)
chmod 755 "$T"
cleanup() {
    if [ "${KEEP_FPM_LEG:-0}" = 1 ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
mkdir "$T/lib" "$T/www" "$T/run" "$T/ext"
cp -L "$LIB" "$T/lib/libsidecar.so.0"
ln -s libsidecar.so.0 "$T/lib/libsidecar.so"
cp "$BIN" "$T/sidecar"
cp "$SRC"/bindings/php/tests/*.php "$T/www/"

echo "building the extension (phpize8.2) in $T/ext"
cp "$SRC"/bindings/php/config.m4 "$SRC"/bindings/php/*.c \
    "$SRC"/bindings/php/*.h "$T/ext/"
(
    cd "$T/ext"
    phpize8.2 >build.log 2>&1
    ./configure --with-php-config=php-config8.2 --with-sidecar \
        --with-sidecar-includedir="$SRC/include" \
        --with-sidecar-libdir="$T/lib" >>build.log 2>&1
    make >>build.log 2>&1
) || {
    tail -30 "$T/ext/build.log"
    echo "FAIL: the extension does not build"
    exit 1
}
cp "$T/ext/modules/sidecar.so" "$T/sidecar.so"
chmod -R a+rX "$T"

rc=0
"$PYTHON" "$SRC/ci/fpm/leg.py" --dir "$T" --src "$SRC" --version "$VERSION" \
    --sidecar-launch sidecar "$@" || rc=$?
[ $rc = 0 ] && echo "FPM leg: PASS" || echo "FPM leg: FAIL"
exit $rc

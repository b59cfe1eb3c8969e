#!/usr/bin/env bash
# Shared state falls back to its file whenever the segment cannot be made
# (docs/shared-state.md): each case runs test_shared_state_e2e in its own
# mount namespace (unshare -m) with a fresh /dev/shm, and requires that the
# sidecar published through $TMPDIR/<name>.shm, that a worker read it, and
# that nothing was left in /dev/shm.
#
#   erofs   /dev/shm mounted read-only                    (real mount)
#   eacces  /dev/shm root's 0755, test run as nobody      (real mount)
#   enosys, enotsup, eperm, enoent  shm_open answering that errno
#           (shm_fail_preload.so: no mount makes the kernel say it)
#
# Usage: shm_fallback.sh E2E_BINARY PRELOAD_SO
# Exits 77 (skipped, saying why) when not root or without unshare.
set -euo pipefail
e2e=$1
preload=$2

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: mount namespaces need root (run as uid $(id -u))"
  exit 77
fi
if ! unshare -m true 2>/dev/null; then
  echo "SKIP: unshare -m is not permitted here"
  exit 77
fi

failed=0
run_case() {
  local name=$1 setup=$2 as_user=$3 errno=${4:-}
  local tmp
  tmp=$(mktemp -d /tmp/sidecar-shm-fallback-XXXXXX)
  chmod 0777 "$tmp"
  local runner=()
  if [[ $as_user == nobody ]]; then
    runner=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  fi
  local env=(TMPDIR="$tmp")
  if [[ -n $errno ]]; then
    # ASan wants to be first in the library list; the shim holds no memory.
    env+=(LD_PRELOAD="$preload" SC_TEST_SHM_ERRNO="$errno"
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
  fi
  echo "---- $name"
  if unshare -m bash -c "
      set -e
      mount --make-rprivate /
      $setup
      exec env ${env[*]} ${runner[*]} '$e2e' file"; then
    echo "ok   $name"
  else
    echo "FAIL $name"
    failed=1
  fi
  rm -rf "$tmp"
}

run_case erofs "mount -t tmpfs -o ro,mode=1777 tmpfs /dev/shm" root
run_case eacces "mount -t tmpfs -o mode=0755 tmpfs /dev/shm" nobody
run_case enosys "mount -t tmpfs -o mode=1777 tmpfs /dev/shm" root 38
run_case enotsup "mount -t tmpfs -o mode=1777 tmpfs /dev/shm" root 95
run_case eperm "mount -t tmpfs -o mode=1777 tmpfs /dev/shm" root 1
run_case enoent "mount -t tmpfs -o mode=1777 tmpfs /dev/shm" root 2
exit $failed

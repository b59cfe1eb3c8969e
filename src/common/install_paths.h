/* Where an installed sidecar finds its own files. */
#ifndef SIDECAR_INSTALL_PATHS_H
#define SIDECAR_INSTALL_PATHS_H

#include <stddef.h>

/* The `sidecar` daemon subprocess mode starts when DD_TRACE_SIDECAR_PATH
 * does not say: the first executable of
 *   1. <directory of libsidecar>/<LIBDIR-to-BINDIR>/sidecar  (an install:
 *      lib/../bin, wherever the prefix was moved)
 *   2. <directory of libsidecar>/sidecar  (a build tree, a Windows bin/)
 *   3. <configured BINDIR>/sidecar  (the prefix given at build time)
 * or the last when none is executable (the spawn then fails and says
 * where it looked). Computed once; the string lives as long as the
 * process. */
const char *sc_install_sidecar_path(void);

/* The candidates above, in order, for messages and tests: writes up to
 * `max` pointers into `out` (valid as long as the process) and returns how
 * many there are. */
size_t sc_install_sidecar_candidates(const char **out, size_t max);

#endif

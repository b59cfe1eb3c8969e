/* The sidecar processes a POSIX test started on its own directory, found
 * in /proc by their command line (`sidecar run ... <dir>...`). */
#ifndef SIDECAR_TEST_SIDECAR_PROCS_H
#define SIDECAR_TEST_SIDECAR_PROCS_H

/* Sends `sig` to every sidecar process whose command line names `dir`
 * (0: only counts them). Returns how many were found and signalled. */
int th_signal_sidecars(const char *dir, int sig);

/* Removes a test's directory `dir` (made by mkdtemp): SIGKILLs the
 * sidecars still running on it, then removes what they could not (a
 * killed sidecar's socket and lock file) and the directory. */
void th_remove_test_dir(const char *dir);

#endif

/* The set-up of the POSIX end-to-end tests: a fresh directory, the local
 * intake recording into it, the agent URL pointing at it. */
#ifndef SIDECAR_TEST_INTAKE_DIR_H
#define SIDECAR_TEST_INTAKE_DIR_H

/* Makes a directory from `dir_template` ("/tmp/name-XXXXXX", changed in
 * place), starts the intake there (records.jsonl) and sets
 * DD_TRACE_AGENT_URL for this process and its children. Returns the
 * intake's port, or 0 after saying why on stderr. */
int th_intake_in_new_dir(char *dir_template);

#endif

/* Reading the sidecar's settings from its environment. */
#ifndef SIDECAR_ENV_H
#define SIDECAR_ENV_H

#include <stdbool.h>
#include <stddef.h>

/* The value of `name` copied into `buf`, or NULL when unset, empty or
 * longer than `size`. Uses uv_os_getenv: on Windows the C runtime's copy
 * of the environment misses what SetEnvironmentVariable set. */
const char *sc_env(const char *name, char *buf, size_t size);

/* Parses true/false, 1/0, yes/no, on/off (any case) into *out; false
 * (and *out unchanged) for anything else. */
bool sc_env_bool(const char *value, bool *out);

/* Logs that `name=value` is ignored; returns UV_EINVAL. */
int sc_env_invalid(const char *name, const char *value);

#endif

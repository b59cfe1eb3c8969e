#include "endpoint.h"

#include <stdio.h>
#include <string.h>

/* sockaddr_un.sun_path holds 108 bytes: 107 characters and a NUL for a
 * path; for an abstract name, one NUL (our '@') and 107 name bytes. */
#define UNIX_PATH_LIMIT 107
#define ABSTRACT_LIMIT  (1 + 107)
#define PIPE_LIMIT      256

size_t sc_endpoint_limit(sc_endpoint_kind_t kind)
{
    switch (kind) {
    case SC_ENDPOINT_ABSTRACT:
        return ABSTRACT_LIMIT;
    case SC_ENDPOINT_FILESYSTEM:
        return UNIX_PATH_LIMIT;
    case SC_ENDPOINT_NAMED_PIPE:
        return PIPE_LIMIT;
    }
    return 0;
}

/* Versions come from build metadata or configuration; keep only characters
 * that are safe in every kind of name. */
static void sanitize(char *out, size_t size, const char *in)
{
    size_t n = 0;
    for (; *in != '\0' && n + 1 < size; in++) {
        char ch = *in;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_';
        if (ok) {
            out[n++] = ch;
        }
    }
    out[n] = '\0';
}

int sc_endpoint_name(char *out, size_t size, const sc_endpoint_params_t *p)
{
    if (p->version == NULL || p->identity == NULL || p->identity[0] == '\0' ||
        (p->kind == SC_ENDPOINT_FILESYSTEM &&
         (p->dir == NULL || p->dir[0] == '\0'))) {
        return UV_EINVAL;
    }
    char version[64];
    sanitize(version, sizeof version, p->version);
    if (version[0] == '\0') {
        return UV_EINVAL;
    }
    char pid[16] = "";
    if (p->elected_thread) {
        strcpy(pid, "-thread");
    } else if (p->master_pid != 0) {
        snprintf(pid, sizeof pid, "-%u", (unsigned)p->master_pid);
    }

    int n = -1;
    switch (p->kind) {
    case SC_ENDPOINT_ABSTRACT:
        n = snprintf(out, size, "@sidecar-%s-%s%s", version, p->identity, pid);
        break;
    case SC_ENDPOINT_FILESYSTEM: {
        size_t dl = strlen(p->dir);
        const char *sep = p->dir[dl - 1] == '/' ? "" : "/";
        n = snprintf(out, size, "%s%ssidecar-%s-%s%s.sock", p->dir, sep,
                     version, p->identity, pid);
        break;
    }
    case SC_ENDPOINT_NAMED_PIPE:
        n = snprintf(out, size, "\\\\.\\pipe\\sidecar-%s-%s%s", version,
                     p->identity, pid);
        break;
    }
    if (n < 0) {
        return UV_EINVAL;
    }
    if ((size_t)n >= size || (size_t)n > sc_endpoint_limit(p->kind)) {
        return UV_ENAMETOOLONG;
    }
    return 0;
}

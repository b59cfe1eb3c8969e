/* Endpoint names, identity and small helpers on Windows. */
#include "win32_internal.h"

#include <sddl.h>
#include <stdio.h>
#include <string.h>

#define PIPE_PREFIX "\\\\.\\pipe\\"

sc_endpoint_kind_t sc_plat_default_endpoint_kind(void)
{
    return SC_ENDPOINT_NAMED_PIPE;
}

uint32_t sc_plat_master_name_pid(uint32_t self)
{
    (void)self; /* no fork: pool processes meet on the identity's name */
    return 0;
}

int sc_plat_master_claim(const char *name, int backlog, int64_t *handle)
{
    (void)name;
    (void)backlog;
    *handle = -1; /* the listener thread wins the election itself */
    return 0;
}

bool sc_plat_master_contestable(uint32_t pid)
{
    (void)pid;
    return true; /* the election keeps a live owner */
}

int sc_plat_identity(char *out, size_t size)
{
    PSID sid = win32_self_sid();
    if (sid == NULL) {
        return UV_EPERM;
    }
    char *text = NULL;
    if (!ConvertSidToStringSidA(sid, &text)) {
        return win32_error(GetLastError());
    }
    int n = snprintf(out, size, "%s", text);
    LocalFree(text);
    return n > 0 && (size_t)n < size ? 0 : UV_ENOBUFS;
}

int win32_error(DWORD err)
{
    return uv_translate_sys_error((int)err);
}

int win32_widen(const char *in, WCHAR *out, size_t count)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, in, -1, out,
                                (int)count);
    if (n > 0) {
        return 0;
    }
    return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? UV_ENAMETOOLONG
                                                       : UV_EINVAL;
}

int win32_pipe_base(const char *endpoint, char *base, size_t size)
{
    size_t prefix = strlen(PIPE_PREFIX);
    if (strncmp(endpoint, PIPE_PREFIX, prefix) != 0 ||
        endpoint[prefix] == '\0' || strchr(endpoint + prefix, '\\') != NULL) {
        return UV_EINVAL; /* only pipe names: no sockets, no paths */
    }
    int n = snprintf(base, size, "%s", endpoint + prefix);
    return n > 0 && (size_t)n < size ? 0 : UV_ENAMETOOLONG;
}

int win32_object_name(const char *endpoint, const char *suffix, WCHAR *out,
                      size_t count)
{
    char base[WIN32_NAME_MAX], name[WIN32_NAME_MAX + 32];
    int rc = win32_pipe_base(endpoint, base, sizeof base);
    if (rc != 0) {
        return rc;
    }
    int n = snprintf(name, sizeof name, "Local\\%s%s", base, suffix);
    if (n < 0 || (size_t)n >= sizeof name) {
        return UV_ENAMETOOLONG;
    }
    return win32_widen(name, out, count);
}

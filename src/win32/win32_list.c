/* Named pipes of this machine, for `sidecar list`. */
#include "win32_internal.h"

#include <stdio.h>
#include <string.h>

int sc_plat_list_endpoints(const char *dir, const char *prefix,
                           void (*each)(void *arg, const char *endpoint),
                           void *arg)
{
    (void)dir;
    WIN32_FIND_DATAA found;
    HANDLE h = FindFirstFileA("\\\\.\\pipe\\*", &found);
    if (h == INVALID_HANDLE_VALUE) {
        return uv_translate_sys_error((int)GetLastError());
    }
    size_t plen = strlen(prefix);
    do {
        char name[SC_ENDPOINT_MAX + 1];
        if (strncmp(found.cFileName, prefix, plen) == 0 &&
            snprintf(name, sizeof name, "\\\\.\\pipe\\%s", found.cFileName) <
                (int)sizeof name) {
            each(arg, name);
        }
    } while (FindNextFileA(h, &found));
    FindClose(h);
    return 0;
}

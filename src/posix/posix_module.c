/* Which file holds a given piece of code (dladdr). */
#define _GNU_SOURCE
#include "platform.h"

#include <dlfcn.h>
#include <string.h>

int sc_plat_module_path(const void *address, char *out, size_t size)
{
    Dl_info info;
    if (dladdr(address, &info) == 0 || info.dli_fname == NULL ||
        info.dli_fname[0] == '\0') {
        return UV_ENOENT;
    }
    size_t len = strlen(info.dli_fname);
    if (len >= size) {
        return UV_ENOBUFS;
    }
    memcpy(out, info.dli_fname, len + 1);
    return 0;
}

/* Listening endpoints of this host, for `sidecar list`. */
#define _GNU_SOURCE
#include "platform.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SO_ACCEPTCON_FLAG 0x10000 /* __SO_ACCEPTCON: a listening socket */

/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; an
 * abstract name is shown with a leading '@'. */
static int list_abstract(const char *prefix,
                         void (*each)(void *arg, const char *endpoint),
                         void *arg)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (f == NULL) {
        return UV_ENOTSUP;
    }
    char line[512];
    size_t plen = strlen(prefix);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long flags = 0;
        char path[256];
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %255s", &flags, path) !=
                2 ||
            (flags & SO_ACCEPTCON_FLAG) == 0 || path[0] != '@' ||
            strncmp(path + 1, prefix, plen) != 0) {
            continue;
        }
        each(arg, path);
    }
    fclose(f);
    return 0;
}

static int list_dir(const char *dir, const char *prefix,
                    void (*each)(void *arg, const char *endpoint), void *arg)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return UV_ENOENT;
    }
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[512];
        struct stat st;
        if (strncmp(e->d_name, prefix, plen) != 0 ||
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
                (int)sizeof path ||
            stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
            continue;
        }
        each(arg, path);
    }
    closedir(d);
    return 0;
}

int sc_plat_list_endpoints(const char *dir, const char *prefix,
                           void (*each)(void *arg, const char *endpoint),
                           void *arg)
{
    return dir != NULL ? list_dir(dir, prefix, each, arg)
                       : list_abstract(prefix, each, arg);
}

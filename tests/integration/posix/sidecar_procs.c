#include "sidecar_procs.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int th_signal_sidecars(const char *dir, int sig)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], cmd[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        size_t len = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++) {
            cmd[i] = cmd[i] == '\0' ? ' ' : cmd[i];
        }
        cmd[len] = '\0';
        if (strstr(cmd, " run ") != NULL && strstr(cmd, dir) != NULL &&
            kill(atoi(e->d_name), sig) == 0) {
            n++;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

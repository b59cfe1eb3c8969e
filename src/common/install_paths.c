/* The daemon is found relative to the library, so an install can be moved
 * (`cmake --install --prefix`, a .deb, a container layer) without
 * rebuilding: see install_paths.h and docs/install.md. */
#include "install_paths.h"

#include "log.h"
#include "platform.h"

#include <stdio.h>
#include <string.h>

#ifndef SIDECAR_LIBDIR_TO_BINDIR
#define SIDECAR_LIBDIR_TO_BINDIR "../bin"
#endif
#ifndef SIDECAR_INSTALL_BINDIR
#define SIDECAR_INSTALL_BINDIR "/usr/local/bin"
#endif
#ifndef SIDECAR_EXE_SUFFIX
#define SIDECAR_EXE_SUFFIX ""
#endif

#define PATH_CAP   4096
#define CANDIDATES 3

static uv_once_t paths_once = UV_ONCE_INIT;
static char candidates[CANDIDATES][PATH_CAP];
static size_t candidate_count;
static const char *chosen;

/* Length of the directory part of `path` (without the last separator), or
 * 0 when it has none. Windows paths may use either separator. */
static size_t dir_length(const char *path)
{
    size_t cut = 0;
    for (size_t i = 0; path[i] != '\0'; i++) {
        if (path[i] == '/' || path[i] == '\\') {
            cut = i;
        }
    }
    return cut;
}

static bool is_executable(const char *path)
{
    uv_fs_t req;
    int rc = uv_fs_access(NULL, &req, path, X_OK, NULL);
    uv_fs_req_cleanup(&req);
    return rc == 0;
}

/* "lib/../bin/sidecar" -> "bin/sidecar", for the logs; kept as is when
 * that fails. */
static void canonicalize(char *path)
{
    uv_fs_t req;
    if (uv_fs_realpath(NULL, &req, path, NULL) == 0 &&
        strlen(req.ptr) < PATH_CAP) {
        strcpy(path, req.ptr);
    }
    uv_fs_req_cleanup(&req);
}

static void add_candidate(const char *dir, size_t dir_len, const char *rel)
{
    char *out = candidates[candidate_count];
    int n;
    if (rel == NULL) {
        n = snprintf(out, PATH_CAP, "%s/sidecar%s", SIDECAR_INSTALL_BINDIR,
                     SIDECAR_EXE_SUFFIX);
    } else if (rel[0] == '\0' || strcmp(rel, ".") == 0) {
        n = snprintf(out, PATH_CAP, "%.*s/sidecar%s", (int)dir_len, dir,
                     SIDECAR_EXE_SUFFIX);
    } else {
        n = snprintf(out, PATH_CAP, "%.*s/%s/sidecar%s", (int)dir_len, dir, rel,
                     SIDECAR_EXE_SUFFIX);
    }
    if (n > 0 && n < PATH_CAP) {
        candidate_count++;
    }
}

static void find_paths(void)
{
    static char module[PATH_CAP];
    if (sc_plat_module_path(&paths_once, module, sizeof module) == 0) {
        size_t len = dir_length(module);
        if (len > 0) {
            add_candidate(module, len, SIDECAR_LIBDIR_TO_BINDIR);
            add_candidate(module, len, ".");
        }
    }
    add_candidate(NULL, 0, NULL);
    chosen = candidates[candidate_count - 1];
    for (size_t i = 0; i < candidate_count; i++) {
        sc_log(SC_LOG_DEBUG, "looking for the sidecar daemon at %s",
               candidates[i]);
        if (is_executable(candidates[i])) {
            chosen = candidates[i];
            canonicalize(candidates[i]);
            break;
        }
    }
    sc_log(SC_LOG_DEBUG, "default sidecar daemon: %s", chosen);
}

const char *sc_install_sidecar_path(void)
{
    uv_once(&paths_once, find_paths);
    return chosen;
}

size_t sc_install_sidecar_candidates(const char **out, size_t max)
{
    uv_once(&paths_once, find_paths);
    size_t n = candidate_count < max ? candidate_count : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = candidates[i];
    }
    return candidate_count;
}

/* See e2e.h. */
#include "e2e.h"

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#if !defined(_WIN32)
#include <sys/wait.h>
#endif

void th_setenv(const char *name, const char *value)
{
    if (value != NULL) {
        uv_os_setenv(name, value);
    } else {
        uv_os_unsetenv(name);
    }
}

bool th_e2e_external(void)
{
    char buf[64];
    size_t len = sizeof buf;
    return uv_os_getenv("SIDECAR_E2E_INTAKE", buf, &len) == 0;
}

static bool read_port(const char *path, int *port)
{
    FILE *f = fopen(path, "r");
    bool ok = f != NULL && fscanf(f, "%d", port) == 1 && *port > 0;
    if (f != NULL) {
        fclose(f);
    }
    return ok;
}

/* A new directory under the temporary one, in e->dir. */
static bool make_dir(th_e2e_t *e)
{
    char tmp[256];
    size_t len = sizeof tmp;
    if (uv_os_tmpdir(tmp, &len) != 0) {
        return false;
    }
    char tpl[300];
    snprintf(tpl, sizeof tpl, "%s/sidecar-e2e-XXXXXX", tmp);
    uv_fs_t req;
    int rc = uv_fs_mkdtemp(NULL, &req, tpl, NULL);
    if (rc == 0) {
        snprintf(e->dir, sizeof e->dir, "%s", req.path);
    }
    uv_fs_req_cleanup(&req);
    return rc == 0;
}

static bool start_here(th_e2e_t *e, bool udp, bool unix_dgram)
{
    if (!make_dir(e)) {
        return false;
    }
    char port_file[600];
    snprintf(port_file, sizeof port_file, "%s/dsd.port", e->dir);
    const char *args[5];
    int n = 0;
    if (udp) {
        args[n++] = "--dogstatsd-port-file";
        args[n++] = port_file;
    }
    if (unix_dgram) {
        snprintf(e->unix_path, sizeof e->unix_path, "%s/dsd.socket", e->dir);
        args[n++] = "--dogstatsd-unix";
        args[n++] = e->unix_path;
    }
    args[n] = NULL;
    e->http_port = th_intake_start_args(e->dir, args);
    return e->http_port > 0 && (!udp || read_port(port_file, &e->dsd_port));
}

bool th_e2e_start(th_e2e_t *e, bool udp, bool unix_dgram)
{
    memset(e, 0, sizeof *e);
    char buf[64];
    size_t len = sizeof buf;
    if (uv_os_getenv("SIDECAR_E2E_INTAKE", buf, &len) == 0) {
        e->external = true;
        if (sscanf(buf, "%d:%d", &e->http_port, &e->dsd_port) != 2 ||
            unix_dgram) {
            return false; /* the driver has no Unix receiver */
        }
    } else if (!start_here(e, udp, unix_dgram)) {
        fprintf(stderr, "e2e: the intake did not start\n");
        return false;
    }
    char url[700];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", e->http_port);
    th_setenv("DD_TRACE_AGENT_URL", url);
    if (unix_dgram) {
        snprintf(url, sizeof url, "unix://%s", e->unix_path);
        th_setenv("DD_DOGSTATSD_URL", url);
    } else if (e->dsd_port > 0) {
        snprintf(url, sizeof url, "udp://127.0.0.1:%d", e->dsd_port);
        th_setenv("DD_DOGSTATSD_URL", url);
    }
    return true;
}

void th_e2e_stop(th_e2e_t *e)
{
    if (!e->external) {
        th_intake_stop();
    }
}

bool th_e2e_check(th_e2e_t *e, const char *script, const char *args)
{
    if (e->external) {
        printf("E2E_CHECK %s %s\n", script, args);
        fflush(stdout);
        return true;
    }
#if defined(_WIN32)
    (void)script;
    (void)args;
    return false; /* the checkers run on the build host (the driver) */
#else
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s/tests/intake/%s %s/records.jsonl %s",
             SIDECAR_PYTHON, SIDECAR_SOURCE_DIR, script, e->dir, args);
    int status = system(cmd);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
#endif
}

bool th_e2e_endpoint_dir(th_e2e_t *e, const char **dir)
{
#if defined(_WIN32)
    (void)e;
    *dir = NULL;
    return true;
#else
    *dir = e->dir;
    return e->dir[0] != '\0' || make_dir(e);
#endif
}

void th_e2e_cleanup(th_e2e_t *e)
{
#if !defined(_WIN32)
    if (e->dir[0] != '\0') {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
        (void)!system(cmd);
    }
#else
    (void)e;
#endif
}

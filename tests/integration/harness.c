#include "harness.h"

#include "endpoint.h"
#include "platform.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

const char *th_sidecar_bin(void)
{
    const char *env = getenv("SIDECAR_BIN");
    return env != NULL ? env : SIDECAR_BIN;
}

void th_endpoint(char *out, size_t size, const char *tag)
{
    static unsigned counter;
#if defined(_WIN32)
    snprintf(out, size, "\\\\.\\pipe\\sidecar-test-%s-%d-%u", tag,
             (int)uv_os_getpid(), counter++);
#else
    snprintf(out, size, "@sidecar-test-%s-%d-%u", tag, (int)uv_os_getpid(),
             counter++);
#endif
}

typedef struct child {
    uv_process_t proc;
    int64_t exit_status;
    int term_signal;
    bool exited;
} child_t;

static void on_child_exit(uv_process_t *p, int64_t status, int signal)
{
    child_t *c = p->data;
    c->exit_status = status;
    c->term_signal = signal;
    c->exited = true;
    uv_close((uv_handle_t *)p, NULL);
}

/* Spawns argv (NULL-terminated). libuv wants mutable strings; they are
 * copied and released once the child is started. */
static int spawn(uv_loop_t *loop, child_t *c, const char *const *cargv)
{
    char *argv[32];
    int argc = 0;
    for (; cargv[argc] != NULL && argc < 31; argc++) {
        argv[argc] = strdup(cargv[argc]);
    }
    argv[argc] = NULL;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t o = {
        .file = argv[0],
        .args = argv,
        .exit_cb = on_child_exit,
        .stdio = stdio,
        .stdio_count = 3,
    };
    memset(c, 0, sizeof *c);
    c->proc.data = c;
    int rc = uv_spawn(loop, &c->proc, &o);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return rc;
}

/* The sidecar runs in a loop of its own that outlives each call. */
static uv_loop_t *sidecar_loop(void)
{
    static uv_loop_t loop;
    static bool ready;
    if (!ready) {
        uv_loop_init(&loop);
        ready = true;
    }
    return &loop;
}

#define MAX_SIDECARS 8
static child_t sidecars[MAX_SIDECARS];

int th_sidecar_start(const char *endpoint, const char *const *extra)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = th_sidecar_bin();
    argv[n++] = "run";
    argv[n++] = "--endpoint";
    argv[n++] = endpoint;
    for (; extra != NULL && *extra != NULL && n < 31; extra++) {
        argv[n++] = *extra;
    }
    argv[n] = NULL;
    child_t *c = NULL;
    for (int i = 0; i < MAX_SIDECARS; i++) {
        if (sidecars[i].proc.pid == 0 || sidecars[i].exited) {
            c = &sidecars[i];
            break;
        }
    }
    if (c == NULL || spawn(sidecar_loop(), c, argv) != 0) {
        return 0;
    }
    sc_client_options_t o = {
        .endpoint = endpoint, .reconnect_min_ms = 1, .reconnect_max_ms = 1};
    sc_client_t *cl = sc_client_new(&o);
    for (int i = 0; i < 500; i++) {
        sc_ping_result_t r;
        if (sc_client_ping(cl, 200, &r) == 0) {
            sc_client_free(cl);
            return c->proc.pid;
        }
        uv_run(sidecar_loop(), UV_RUN_NOWAIT);
        if (c->exited) {
            break;
        }
        uv_sleep(10);
    }
    sc_client_free(cl);
    return 0;
}

int th_sidecar_stop(int pid, bool kill_hard)
{
    for (int i = 0; i < MAX_SIDECARS; i++) {
        child_t *c = &sidecars[i];
        if (c->proc.pid != pid || c->exited) {
            continue;
        }
#if defined(_WIN32)
        /* No SIGTERM between Windows processes: the daemon's stop event
         * (sc_plat_request_stop); a hard kill is TerminateProcess. */
        if (kill_hard || sc_plat_request_stop((uint32_t)pid) != 0) {
            uv_process_kill(&c->proc, SIGKILL);
        }
#else
        uv_process_kill(&c->proc, kill_hard ? SIGKILL : SIGTERM);
#endif
        while (!c->exited) {
            uv_run(sidecar_loop(), UV_RUN_ONCE);
        }
        uv_run(sidecar_loop(), UV_RUN_NOWAIT);
#if defined(_WIN32)
        if (kill_hard) {
            return -SIGKILL; /* TerminateProcess leaves no signal behind */
        }
#endif
        return c->term_signal != 0 ? -c->term_signal : (int)c->exit_status;
    }
    return -1;
}

void th_subprocess_endpoint(char *out, size_t size, const char *dir)
{
    char identity[128];
    sc_plat_identity(identity, sizeof identity);
    sc_endpoint_params_t p = {.kind = dir != NULL
                                          ? SC_ENDPOINT_FILESYSTEM
                                          : sc_plat_default_endpoint_kind(),
                              .version = sc_version(),
                              .identity = identity,
                              .dir = dir};
    if (sc_endpoint_name(out, size, &p) != 0) {
        out[0] = '\0';
    }
}

int th_stop_endpoint(const char *endpoint)
{
    sc_client_options_t o = {.endpoint = endpoint, .connect_timeout_ms = 1000};
    sc_client_t *c = sc_client_new(&o);
    sc_ping_result_t r;
    uint32_t pid = sc_client_ping(c, 2000, &r) == 0 ? r.server_pid : 0;
    sc_client_free(c);
    if (pid == 0) {
        return 0;
    }
    /* Its final flush may take a while under Wine: up to 30 s. */
    if (sc_plat_request_stop(pid) == 0) {
        for (int i = 0; i < 3000 && sc_plat_process_alive(pid); i++) {
            uv_sleep(10);
        }
    }
    if (sc_plat_process_alive(pid)) {
        fprintf(stderr, "sidecar %u on %s did not stop\n", (unsigned)pid,
                endpoint);
        return -1;
    }
    return 1;
}

int th_run_children(const char *self, int n, const char *const *args)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    child_t *kids = calloc((size_t)n, sizeof *kids);
    char(*index)[16] = calloc((size_t)n, sizeof *index);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        const char *argv[32];
        int k = 0;
        argv[k++] = self;
        for (const char *const *a = args; a != NULL && *a != NULL && k < 30;
             a++) {
            argv[k++] = *a;
        }
        snprintf(index[i], sizeof index[i], "%d", i);
        argv[k++] = index[i];
        argv[k] = NULL;
        if (spawn(&loop, &kids[i], argv) != 0) {
            kids[i].exited = true;
            kids[i].exit_status = 127;
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < n; i++) {
        if (kids[i].exit_status != 0 || kids[i].term_signal != 0) {
            fprintf(stderr, "child %d: status %lld signal %d\n", i,
                    (long long)kids[i].exit_status, kids[i].term_signal);
            failed++;
        }
    }
    uv_loop_close(&loop);
    free(kids);
    free(index);
    return failed;
}

char *th_stats(const char *endpoint)
{
    sc_client_options_t o = {.endpoint = endpoint};
    sc_client_t *c = sc_client_new(&o);
    char *json = NULL;
    if (sc_client_sidecar_stats(c, 2000, &json) != 0) {
        json = NULL;
    }
    sc_client_free(c);
    return json;
}

uint64_t th_json_u64(const char *json, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json != NULL ? strstr(json, pat) : NULL;
    if (p == NULL) {
        return UINT64_MAX;
    }
    return strtoull(p + strlen(pat), NULL, 10);
}

size_t th_trace_payload(uint8_t *out, uint64_t id)
{
    /* [[{"trace_id": id}]] : fixarray(1) fixarray(1) fixmap(1)
     * fixstr(8) "trace_id" uint64 */
    size_t n = 0;
    out[n++] = 0x91;
    out[n++] = 0x91;
    out[n++] = 0x81;
    out[n++] = 0xa8;
    memcpy(out + n, "trace_id", 8);
    n += 8;
    out[n++] = 0xcf;
    for (int i = 7; i >= 0; i--) {
        out[n++] = (uint8_t)(id >> (8 * i));
    }
    return n;
}

static child_t intake;

int th_intake_start(const char *dir)
{
    return th_intake_start_args(dir, NULL);
}

int th_intake_start_args(const char *dir, const char *const *extra)
{
    char port_file[512], records[512];
    snprintf(port_file, sizeof port_file, "%s/intake.port", dir);
    snprintf(records, sizeof records, "%s/records.jsonl", dir);
    const char *argv[24] = {
        SIDECAR_PYTHON, SIDECAR_SOURCE_DIR "/tests/intake/intake.py",
        "--port-file",  port_file,
        "--record",     records,
        "--quiet"};
    int n = 7;
    for (; extra != NULL && *extra != NULL && n < 23; extra++) {
        argv[n++] = *extra;
    }
    argv[n] = NULL;
    if (spawn(sidecar_loop(), &intake, argv) != 0) {
        return 0;
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(port_file, "r");
        int port = 0;
        if (f != NULL) {
            if (fscanf(f, "%d", &port) != 1) {
                port = 0;
            }
            fclose(f);
        }
        if (port > 0) {
            return port;
        }
        uv_run(sidecar_loop(), UV_RUN_NOWAIT);
        if (intake.exited) {
            break;
        }
        uv_sleep(10);
    }
    return 0;
}

void th_intake_stop(void)
{
    if (intake.proc.pid == 0 || intake.exited) {
        return;
    }
    uv_process_kill(&intake.proc, SIGTERM);
    while (!intake.exited) {
        uv_run(sidecar_loop(), UV_RUN_ONCE);
    }
}

void th_subprocess_config(sc_config_t *cfg, const char *dir)
{
    sc_config_defaults(cfg);
    sc_config_from_env(cfg);
    cfg->mode = SC_MODE_SUBPROCESS;
    cfg->sidecar_path = th_sidecar_bin();
    cfg->endpoint_dir = dir;
}

/* An IIS-like application pool (docs/runtime.md, docs/windows.md): independent
 * worker processes of one identity (no fork: each calls sc_init() itself, as
 * each php-cgi.exe runs MINIT), started in random order, some killed at random
 * (TerminateProcess, as a crash or a hard recycle) and replaced, all
 * delivering. In thread mode the current master is among the victims and
 * the survivors elect another.
 *
 *   test_iis_pool manager <subprocess|thread> <dir> <seed>
 *   test_iis_pool worker  <subprocess|thread> <dir> <index> <manager pid>
 *
 * The manager logs what it did to <dir>/manager.log, each worker what it
 * sent and what the sidecar acknowledged to <dir>/worker-<index>.log;
 * iis_pool_check.py runs the manager against the local intake and checks
 * the intake received every acknowledged trace (docs/windows.md). */
#include "endpoint.h"
#include "harness.h"
#include "platform.h"
#include "sidecar.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#define POOL_SIZE       6   /* workers alive at once */
#define REQUESTS        150 /* per worker */
#define WORKER_KILLS    4
#define MASTER_KILLS    3 /* thread mode, on top of WORKER_KILLS */
#define MAX_WORKERS     (POOL_SIZE + WORKER_KILLS + MASTER_KILLS)
#define FINISH_WAIT_MS  120000
#define FLUSH_TIMEOUT   3000
#define CONNECT_TIMEOUT 5000

static char sidecar_path[MAX_PATH];
static FILE *log_file;

static void logf_line(const char *fmt, ...)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 1, 2)));

/* One line, flushed at once: a killed process keeps what it wrote. */
static void logf_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log_file, fmt, ap);
    va_end(ap);
    fputc('\n', log_file);
    fflush(log_file);
}

static sc_connection_mode_t parse_mode(const char *s)
{
    return strcmp(s, "thread") == 0 ? SC_MODE_THREAD : SC_MODE_SUBPROCESS;
}

static void pool_endpoint(sc_connection_mode_t mode, char *out, size_t size)
{
    char identity[128];
    sc_plat_identity(identity, sizeof identity);
    sc_endpoint_params_t p = {.kind = SC_ENDPOINT_NAMED_PIPE,
                              .version = sc_version(),
                              .identity = identity,
                              .master_pid = mode == SC_MODE_THREAD ? 1 : 0,
                              .elected_thread = mode == SC_MODE_THREAD};
    sc_endpoint_name(out, size, &p);
}

/* Who answers on the pool's endpoint (the sidecar, or the master). */
static uint32_t server_pid(sc_connection_mode_t mode)
{
    char ep[SC_ENDPOINT_MAX + 1];
    pool_endpoint(mode, ep, sizeof ep);
    sc_client_options_t o = {.endpoint = ep, .connect_timeout_ms = 1000};
    sc_client_t *c = sc_client_new(&o);
    sc_ping_result_t r;
    uint32_t pid = sc_client_ping(c, 2000, &r) == 0 ? r.server_pid : 0;
    sc_client_free(c);
    return pid;
}

static void exit_event_name(uint32_t manager, int index, char *out, size_t size)
{
    snprintf(out, size, "Local\\sidecar-iis-pool-%u-exit-%d", (unsigned)manager,
             index);
}

/* ---- worker: one php-cgi.exe ----------------------------------------- */

typedef struct snapshot {
    uint64_t connects, dropped;
} snapshot_t;

static snapshot_t snap(void)
{
    sc_client_stats_t st;
    sc_client_stats(sc_runtime_client(), &st);
    snapshot_t s = {.connects = st.connects, .dropped = st.dropped_in_flight};
    for (int k = 0; k < SC_ACTION_KIND_COUNT; k++) {
        s.dropped += st.dropped_full[k];
    }
    return s;
}

/* The pid answering on the runtime's current connection, or 0. */
static uint32_t ping_server(void)
{
    sc_ping_result_t r;
    return sc_client_ping(sc_runtime_client(), FLUSH_TIMEOUT, &r) == 0
               ? r.server_pid
               : 0;
}

/* One request: a trace and a flag evaluation, then the request-end flush.
 * Logged as "ack <id> <server> <flag> <t_start> <t_end>" (µs) when the
 * sidecar that answered the barrier handled both over one connection,
 * else "unacked <id> ...". */
static void serve_request(int index, int r)
{
    uint64_t id = (uint64_t)(index + 1) << 32 | (uint64_t)r;
    /* The answers come between these two instants (a machine-wide clock:
     * the checker orders answers of different processes with it). */
    uint64_t t_start = uv_hrtime() / 1000u;
    snapshot_t before = snap();
    uint32_t server = ping_server();
    logf_line("sent %llu", (unsigned long long)id);
    uint8_t payload[64];
    size_t len = th_trace_payload(payload, id);
    int trace_rc = sc_send_trace(payload, len, 1);
    char flag[32];
    snprintf(flag, sizeof flag, "iis-flag-%d", index);
    sc_flag_evaluation_t ev = {
        .flag_key = flag, .variant_key = "on", .reason = "STATIC"};
    int flag_rc = sc_flag_evaluation_record(&ev);
    if (flag_rc == 0) {
        flag_rc = sc_flag_evaluations_flush();
    }
    int rc = sc_flush_sync(FLUSH_TIMEOUT);
    uint32_t answered = rc == 0 ? ping_server() : 0;
    snapshot_t after = snap();
    uint64_t t_end = uv_hrtime() / 1000u;
    if (rc == 0 && trace_rc == 0 && answered != 0 && answered == server &&
        after.connects == before.connects && after.dropped == before.dropped) {
        logf_line("ack %llu %u %d %llu %llu", (unsigned long long)id,
                  (unsigned)server, flag_rc == 0, (unsigned long long)t_start,
                  (unsigned long long)t_end);
    } else {
        logf_line("unacked %llu server=%u flush=%d trace=%d reconnects=%llu "
                  "dropped=%llu",
                  (unsigned long long)id, (unsigned)server, rc, trace_rc,
                  (unsigned long long)(after.connects - before.connects),
                  (unsigned long long)(after.dropped - before.dropped));
    }
}

static int worker(sc_connection_mode_t mode, int index, uint32_t manager)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_config_from_env(&cfg);
    cfg.mode = mode;
    cfg.sidecar_path = sidecar_path;
    cfg.connect_timeout_ms = CONNECT_TIMEOUT;
    cfg.client.language = "php";
    cfg.client.language_version = "8.2";
    cfg.client.tracer_version = "iis-pool";
    cfg.client.service = "iis-pool";
    cfg.client.reconnect_min_ms = 5;
    cfg.client.reconnect_max_ms = 50;
    cfg.client.enqueue_budget_us = 5000;
    sc_init(&cfg);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    logf_line("start %lu %s listener=%d (%s)", GetCurrentProcessId(),
              sc_connection_mode_name(info.mode), info.listener_here,
              info.reason);
    bool was_master = info.listener_here;
    srand((unsigned)GetCurrentProcessId());
    for (int r = 0; r < REQUESTS; r++) {
        serve_request(index, r);
        sc_runtime_info(&info);
        if (info.listener_here && !was_master) {
            logf_line("master %lu", GetCurrentProcessId());
        }
        was_master = info.listener_here;
        Sleep((DWORD)(1 + rand() % 4)); /* think time */
    }
    /* Done: stay until the pool shuts down, as IIS keeps a worker until
     * it recycles it. */
    char name[96];
    exit_event_name(manager, index, name, sizeof name);
    HANDLE finish = CreateEventA(NULL, TRUE, FALSE, name);
    logf_line("idle");
    WaitForSingleObject(finish, FINISH_WAIT_MS);
    sc_shutdown();
    logf_line("done");
    return 0;
}

/* ---- manager: the pool (IIS's WAS) ----------------------------------- */

typedef struct slot {
    int index;
    PROCESS_INFORMATION pi;
    HANDLE finish;
    bool killed, reaped;
} slot_t;

static slot_t workers[MAX_WORKERS];
static int worker_count;

static bool start_worker(const char *self, const char *mode, const char *dir)
{
    if (worker_count == MAX_WORKERS) {
        return false;
    }
    slot_t *w = &workers[worker_count];
    w->index = worker_count++;
    char name[96];
    exit_event_name(GetCurrentProcessId(), w->index, name, sizeof name);
    w->finish = CreateEventA(NULL, TRUE, FALSE, name);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" worker %s \"%s\" %d %lu", self, mode, dir,
             w->index, GetCurrentProcessId());
    STARTUPINFOA si = {.cb = sizeof si};
    if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si,
                        &w->pi)) {
        logf_line("error cannot start worker %d: %lu", w->index,
                  GetLastError());
        return false;
    }
    logf_line("worker %d %lu", w->index, w->pi.dwProcessId);
    return true;
}

static bool running(const slot_t *w)
{
    return !w->killed && WaitForSingleObject(w->pi.hProcess, 0) == WAIT_TIMEOUT;
}

static slot_t *find_pid(uint32_t pid)
{
    for (int i = 0; i < worker_count; i++) {
        if (workers[i].pi.dwProcessId == pid && running(&workers[i])) {
            return &workers[i];
        }
    }
    return NULL;
}

static void kill_worker(slot_t *w, const char *role)
{
    TerminateProcess(w->pi.hProcess, 9);
    WaitForSingleObject(w->pi.hProcess, 10000);
    w->killed = true;
    logf_line("killed %lu %s", w->pi.dwProcessId, role);
}

/* Ends the pool: workers that are not the master first, then the master,
 * so that nobody is elected on the way out. Returns the failures. */
static int finish_pool(sc_connection_mode_t mode)
{
    int failures = 0;
    for (int round = 0; round < 2; round++) {
        uint32_t master = mode == SC_MODE_THREAD ? server_pid(mode) : 0;
        for (int i = 0; i < worker_count; i++) {
            slot_t *w = &workers[i];
            if (w->killed || w->reaped ||
                (round == 0 && w->pi.dwProcessId == master)) {
                continue;
            }
            SetEvent(w->finish);
            DWORD code = 1;
            if (WaitForSingleObject(w->pi.hProcess, FINISH_WAIT_MS) !=
                    WAIT_OBJECT_0 ||
                !GetExitCodeProcess(w->pi.hProcess, &code)) {
                code = 1;
            }
            w->reaped = true;
            logf_line("exit %lu %lu", w->pi.dwProcessId, code);
            failures += code != 0;
        }
    }
    return failures;
}

static int manager(const char *self, const char *mode_name, const char *dir,
                   unsigned seed)
{
    sc_connection_mode_t mode = parse_mode(mode_name);
    srand(seed);
    logf_line("seed %u mode %s", seed, mode_name);
    /* A sidecar left by an earlier test would serve this pool too. */
    uint32_t stale = server_pid(mode);
    if (stale != 0 && sc_plat_request_stop(stale) == 0) {
        HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, stale);
        if (h != NULL) {
            WaitForSingleObject(h, 10000);
            CloseHandle(h);
        }
    }
    /* Random order: indices are assigned in start order, the delays
     * between starts are random. */
    for (int i = 0; i < POOL_SIZE; i++) {
        if (!start_worker(self, mode_name, dir)) {
            return 1;
        }
        Sleep((DWORD)(rand() % 120));
    }
    int worker_kills = 0, master_kills = 0;
    int master_target = mode == SC_MODE_THREAD ? MASTER_KILLS : 0;
    while (worker_kills < WORKER_KILLS || master_kills < master_target) {
        Sleep((DWORD)(150 + rand() % 250));
        bool want_master = master_kills < master_target &&
                           (worker_kills >= WORKER_KILLS || rand() % 2 == 0);
        slot_t *victim = NULL;
        const char *role = "worker";
        if (want_master) {
            victim = find_pid(server_pid(mode));
            role = "master";
        }
        if (victim == NULL) {
            int alive[MAX_WORKERS], n = 0;
            uint32_t master = mode == SC_MODE_THREAD ? server_pid(mode) : 0;
            for (int i = 0; i < worker_count; i++) {
                if (running(&workers[i]) &&
                    workers[i].pi.dwProcessId != master) {
                    alive[n++] = i;
                }
            }
            if (n == 0) {
                logf_line("error nobody left to kill");
                break;
            }
            victim = &workers[alive[rand() % n]];
            role = "worker";
        }
        kill_worker(victim, role);
        if (strcmp(role, "master") == 0) {
            master_kills++;
        } else {
            worker_kills++;
        }
        if (!start_worker(self, mode_name, dir)) {
            return 1;
        }
    }
    /* Everybody finishes its requests, then the pool shuts down. */
    for (int i = 0; i < worker_count; i++) {
        char path[MAX_PATH + 32];
        snprintf(path, sizeof path, "%s/worker-%d.log", dir, workers[i].index);
        for (int waited = 0; running(&workers[i]) && waited < FINISH_WAIT_MS;
             waited += 50) {
            FILE *f = fopen(path, "r");
            char line[256];
            bool idle = false;
            while (f != NULL && fgets(line, sizeof line, f) != NULL) {
                idle = idle || strncmp(line, "idle", 4) == 0;
            }
            if (f != NULL) {
                fclose(f);
            }
            if (idle) {
                break;
            }
            Sleep(50);
        }
    }
    uint32_t sidecar = mode == SC_MODE_SUBPROCESS ? server_pid(mode) : 0;
    int failures = finish_pool(mode);
    if (mode == SC_MODE_SUBPROCESS) {
        /* Its final flush delivers what it still holds. */
        DWORD code = 1;
        HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                               FALSE, sidecar);
        if (sidecar == 0 || h == NULL || sc_plat_request_stop(sidecar) != 0 ||
            WaitForSingleObject(h, 20000) != WAIT_OBJECT_0 ||
            !GetExitCodeProcess(h, &code)) {
            code = 1;
        }
        if (h != NULL) {
            CloseHandle(h);
        }
        logf_line("sidecar %u stopped %lu", (unsigned)sidecar, code);
        failures += code != 0;
    }
    logf_line("kills workers=%d masters=%d failures=%d", worker_kills,
              master_kills, failures);
    return failures == 0 && worker_kills == WORKER_KILLS &&
                   master_kills == master_target
               ? 0
               : 1;
}

int main(int argc, char **argv)
{
    const char *bin = th_sidecar_bin();
    if (GetFullPathNameA(bin, sizeof sidecar_path, sidecar_path, NULL) == 0) {
        snprintf(sidecar_path, sizeof sidecar_path, "%s", bin);
    }
    char path[MAX_PATH + 32];
    if (argc == 6 && strcmp(argv[1], "worker") == 0) {
        snprintf(path, sizeof path, "%s/worker-%s.log", argv[3], argv[4]);
        log_file = fopen(path, "a");
        if (log_file == NULL) {
            return 2;
        }
        return worker(parse_mode(argv[2]), atoi(argv[4]),
                      (uint32_t)strtoul(argv[5], NULL, 10));
    }
    if (argc == 5 && strcmp(argv[1], "manager") == 0) {
        snprintf(path, sizeof path, "%s/manager.log", argv[3]);
        log_file = fopen(path, "a");
        if (log_file == NULL) {
            return 2;
        }
        char self[MAX_PATH];
        GetModuleFileNameA(NULL, self, sizeof self);
        return manager(self, argv[2], argv[3],
                       (unsigned)strtoul(argv[4], NULL, 10));
    }
    fprintf(stderr, "usage: test_iis_pool manager <subprocess|thread> <dir> "
                    "<seed>\n");
    return 2;
}

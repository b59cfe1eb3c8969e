/* The runtime's subprocess lifecycles on Windows (docs/runtime.md): race-free
 * spawn through the election handover, a killed sidecar replaced, idle
 * exit, and auto's fallback to thread mode. Real processes, the real
 * sidecar.exe, real pipes, under Wine in the Windows leg.
 *
 * Windows has no endpoint directory to isolate a scenario in: every
 * scenario uses this user's real subprocess name, so each one first stops
 * any sidecar left on it and stops its own before it ends (CTest runs the
 * leg's tests one at a time).
 *
 * Usage: test_runtime_win32 <scenario>. CTest runs one scenario per test. */
#include "endpoint.h"
#include "harness.h"
#include "platform.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tlhelp32.h>
#include <windows.h>

#define RACERS           16
#define TRACES_PER_RACER 100

static char sidecar_path[MAX_PATH];

static void base_config(sc_config_t *cfg, sc_connection_mode_t mode)
{
    sc_config_defaults(cfg);
    cfg->mode = mode;
    cfg->sidecar_path = sidecar_path;
    cfg->connect_timeout_ms = 5000; /* process start under Wine is slow */
    cfg->idle_timeout_ms = 10000;
    cfg->client.reconnect_min_ms = 5;
    cfg->client.reconnect_max_ms = 50;
    cfg->client.enqueue_budget_us = 5000;
}

static void subprocess_endpoint(char *out, size_t size)
{
    char identity[128];
    sc_plat_identity(identity, sizeof identity);
    sc_endpoint_params_t p = {.kind = SC_ENDPOINT_NAMED_PIPE,
                              .version = sc_version(),
                              .identity = identity};
    sc_endpoint_name(out, size, &p);
}

/* The pid of the sidecar answering on `endpoint`, or 0. */
static uint32_t sidecar_answering(const char *endpoint)
{
    sc_client_options_t o = {.endpoint = endpoint, .connect_timeout_ms = 500};
    sc_client_t *c = sc_client_new(&o);
    sc_ping_result_t r;
    uint32_t pid = sc_client_ping(c, 2000, &r) == 0 ? r.server_pid : 0;
    sc_client_free(c);
    return pid;
}

static bool wait_exit(uint32_t pid, DWORD ms, DWORD *code)
{
    HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                           FALSE, pid);
    if (h == NULL) {
        return true; /* gone already */
    }
    bool exited = WaitForSingleObject(h, ms) == WAIT_OBJECT_0;
    if (exited && code != NULL) {
        GetExitCodeProcess(h, code);
    }
    CloseHandle(h);
    return exited;
}

/* Stops whatever sidecar answers on the subprocess name; 0 when none is
 * left. `code` gets its exit status. */
static int stop_sidecar(DWORD *code)
{
    char ep[SC_ENDPOINT_MAX + 1];
    subprocess_endpoint(ep, sizeof ep);
    uint32_t pid = sidecar_answering(ep);
    if (pid == 0) {
        return 0;
    }
    if (sc_plat_request_stop(pid) != 0 || !wait_exit(pid, 10000, code)) {
        fprintf(stderr, "sidecar pid %u does not stop\n", (unsigned)pid);
        return 1;
    }
    return 0;
}

/* Running processes whose image is sidecar.exe. */
static int count_sidecar_processes(void)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W pe = {.dwSize = sizeof pe};
    int n = 0;
    for (BOOL ok = Process32FirstW(snap, &pe); ok;
         ok = Process32NextW(snap, &pe)) {
        n += _wcsicmp(pe.szExeFile, L"sidecar.exe") == 0;
    }
    CloseHandle(snap);
    return n;
}

static int send_traces(int n, uint64_t base)
{
    uint8_t payload[64];
    int dropped = 0;
    for (int i = 0; i < n; i++) {
        size_t len = th_trace_payload(payload, base + (uint64_t)i);
        dropped += sc_send_trace(payload, len, 1) != 0;
    }
    return dropped;
}

/* ---- spawn_race: RACERS processes released at once, no sidecar yet ---- */

static int racer(const char *go_event, const char *report, int index)
{
    /* All wait on one event so that they start within the same instant. */
    HANDLE go = OpenEventA(SYNCHRONIZE, FALSE, go_event);
    if (go == NULL || WaitForSingleObject(go, 30000) != WAIT_OBJECT_0) {
        fprintf(stderr, "racer %d: no start signal\n", index);
        return 1;
    }
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_SUBPROCESS);
    sc_init(&cfg);
    int dropped = send_traces(TRACES_PER_RACER, (uint64_t)index << 32);
    int rc = sc_flush_sync(10000);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    sc_ping_result_t r = {0};
    int ping = sc_client_ping(sc_runtime_client(), 5000, &r);
    FILE *f = fopen(report, "w");
    if (f != NULL) {
        fprintf(f, "%u %llu %u\n", (unsigned)r.server_pid,
                (unsigned long long)info.spawns, (unsigned)dropped);
        fclose(f);
    }
    sc_shutdown();
    if (rc != 0 || ping != 0 || dropped != 0) {
        fprintf(stderr, "racer %d: flush %s, ping %s, %d dropped (%s)\n", index,
                sc_strerror(rc), sc_strerror(ping), dropped, info.reason);
        return 1;
    }
    return 0;
}

static void CALLBACK release_racers(void *event, BOOLEAN fired)
{
    (void)fired;
    SetEvent(event);
}

static int spawn_race(const char *self)
{
    TH_CHECK(stop_sidecar(NULL) == 0);
    char go_name[64], report_dir[MAX_PATH];
    snprintf(go_name, sizeof go_name, "Local\\sidecar-test-race-%lu",
             GetCurrentProcessId());
    HANDLE go = CreateEventA(NULL, TRUE, FALSE, go_name);
    TH_CHECK(go != NULL);
    GetTempPathA(sizeof report_dir, report_dir);
    char prefix[MAX_PATH];
    snprintf(prefix, sizeof prefix, "%ssidecar-race-%lu", report_dir,
             GetCurrentProcessId());
    /* th_run_children waits for them all: a timer releases them once
     * they had time to start. */
    HANDLE timer = NULL;
    TH_CHECK(CreateTimerQueueTimer(&timer, NULL, release_racers, go, 3000, 0,
                                   WT_EXECUTEONLYONCE));
    const char *args[] = {"racer", go_name, prefix, NULL};
    int failed = th_run_children(self, RACERS, args);
    TH_CHECK(failed == 0);
    uint32_t first_pid = 0;
    unsigned long long spawns = 0;
    for (int i = 0; i < RACERS; i++) {
        char path[MAX_PATH + 16];
        snprintf(path, sizeof path, "%s-%d", prefix, i);
        FILE *f = fopen(path, "r");
        TH_CHECK(f != NULL);
        unsigned pid = 0, dropped = 0;
        unsigned long long s = 0;
        TH_CHECK(fscanf(f, "%u %llu %u", &pid, &s, &dropped) == 3);
        fclose(f);
        remove(path);
        if (first_pid == 0) {
            first_pid = pid;
        }
        TH_CHECK(pid == first_pid); /* one sidecar answered everyone */
        spawns += s;
    }
    char ep[SC_ENDPOINT_MAX + 1];
    subprocess_endpoint(ep, sizeof ep);
    char *json = th_stats(ep);
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    int processes = count_sidecar_processes();
    printf("%d racers: sidecar pid %u, %llu spawn(s), %d sidecar process(es), "
           "%llu traces\n",
           RACERS, (unsigned)first_pid, spawns, processes,
           (unsigned long long)traces);
    TH_CHECK(spawns == 1);
    TH_CHECK(processes == 1);
    TH_CHECK(traces == RACERS * TRACES_PER_RACER);
    /* Shared state (docs/shared-state.md): the sidecar publishes its pid and
     * health in a named mapping any process of this user reads without a round
     * trip; it goes with the sidecar. */
    sc_agent_state_t st;
    TH_CHECK(sc_agent_state_read(ep, &st) == 0);
    bool published = st.healthy && st.sidecar_pid == first_pid;
    sc_agent_state_free(&st);
    TH_CHECK(published);
    DWORD code = 1;
    TH_CHECK(stop_sidecar(&code) == 0 && code == 0);
    TH_CHECK(sc_agent_state_read(ep, &st) != 0);
    return 0;
}

/* ---- sidecar_killed: TerminateProcess of the sidecar mid-stream ---- */

static int sidecar_killed(void)
{
    TH_CHECK(stop_sidecar(NULL) == 0);
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_SUBPROCESS);
    TH_CHECK(sc_init(&cfg) == 0);
    TH_CHECK(send_traces(1000, 0) == 0);
    TH_CHECK(sc_flush_sync(10000) == 0);
    sc_runtime_info_t before;
    sc_runtime_info(&before);
    TH_CHECK(before.mode == SC_MODE_SUBPROCESS && before.sidecar_pid != 0);
    HANDLE h =
        OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, before.sidecar_pid);
    TH_CHECK(h != NULL && TerminateProcess(h, 9));
    WaitForSingleObject(h, 5000);
    CloseHandle(h);
    /* Sends while there is no sidecar are queued (or dropped, counted);
     * the first flush that finds it gone starts another. */
    int dropped = send_traces(1000, 1000);
    int rc = UV_ETIMEDOUT;
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = sc_flush_sync(5000);
        if (rc != 0) {
            Sleep(100);
        }
    }
    sc_runtime_info_t after;
    sc_runtime_info(&after);
    sc_client_stats_t st;
    sc_client_stats(sc_runtime_client(), &st);
    char ep[SC_ENDPOINT_MAX + 1];
    subprocess_endpoint(ep, sizeof ep);
    char *json = th_stats(ep);
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    printf("killed sidecar %u, now %u (%llu spawns); new sidecar counted "
           "%llu traces, client dropped %d full, %llu in flight\n",
           (unsigned)before.sidecar_pid, (unsigned)after.sidecar_pid,
           (unsigned long long)after.spawns, (unsigned long long)traces,
           dropped, (unsigned long long)st.dropped_in_flight);
    TH_CHECK(rc == 0);
    TH_CHECK(after.sidecar_pid != before.sidecar_pid && after.spawns == 2);
    /* Everything sent after the kill reached the new sidecar, or was
     * dropped and counted. */
    TH_CHECK(traces + (uint64_t)dropped + st.dropped_in_flight >= 1000);
    sc_shutdown();
    DWORD code = 1;
    TH_CHECK(stop_sidecar(&code) == 0 && code == 0);
    return 0;
}

/* ---- idle_exit: the sidecar leaves by itself once nobody is connected -- */

static int idle_exit(void)
{
    TH_CHECK(stop_sidecar(NULL) == 0);
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_SUBPROCESS);
    cfg.idle_timeout_ms = 300;
    TH_CHECK(sc_init(&cfg) == 0);
    TH_CHECK(send_traces(10, 0) == 0);
    TH_CHECK(sc_flush_sync(10000) == 0);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    sc_shutdown(); /* closes our connection: the idle timer starts */
    DWORD code = 1;
    bool exited = wait_exit(info.sidecar_pid, 10000, &code);
    char ep[SC_ENDPOINT_MAX + 1];
    subprocess_endpoint(ep, sizeof ep);
    sc_plat_conn_t *conn = NULL;
    int rc = sc_plat_conn_open(ep, 100, &conn);
    printf("sidecar %u exited: %d (code %lu); connect afterwards: %s\n",
           (unsigned)info.sidecar_pid, exited, code, uv_strerror(rc));
    TH_CHECK(exited && code == 0);
    TH_CHECK(rc == UV_ENOENT || rc == UV_ECONNREFUSED);
    return 0;
}

/* ---- auto_fallback: no sidecar binary, thread mode says why ---- */

static int auto_fallback(void)
{
    TH_CHECK(stop_sidecar(NULL) == 0);
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_AUTO);
    cfg.sidecar_path = "C:\\no\\such\\dir\\sidecar.exe";
    cfg.connect_timeout_ms = 1000;
    TH_CHECK(sc_init(&cfg) == 0);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    printf("mode %s: %s (listener here: %d, endpoint %s)\n",
           sc_connection_mode_name(info.mode), info.reason, info.listener_here,
           info.endpoint);
    TH_CHECK(info.mode == SC_MODE_THREAD && info.listener_here);
    TH_CHECK(strstr(info.reason, "C:\\no\\such\\dir\\sidecar.exe") != NULL);
    TH_CHECK(strstr(info.endpoint, "-thread") != NULL);
    TH_CHECK(send_traces(100, 0) == 0);
    TH_CHECK(sc_flush_sync(5000) == 0);
    char *json = th_stats(info.endpoint);
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    TH_CHECK(traces == 100);
    sc_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    const char *bin = th_sidecar_bin();
    if (GetFullPathNameA(bin, sizeof sidecar_path, sidecar_path, NULL) == 0) {
        snprintf(sidecar_path, sizeof sidecar_path, "%s", bin);
    }
    if (argc == 5 && strcmp(argv[1], "racer") == 0) {
        char report[MAX_PATH + 16];
        snprintf(report, sizeof report, "%s-%s", argv[3], argv[4]);
        return racer(argv[2], report, atoi(argv[4]));
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_runtime_win32 <scenario>\n");
        return 2;
    }
    const char *s = argv[1];
    int rc = strcmp(s, "spawn_race") == 0       ? spawn_race(argv[0])
             : strcmp(s, "sidecar_killed") == 0 ? sidecar_killed()
             : strcmp(s, "idle_exit") == 0      ? idle_exit()
             : strcmp(s, "auto_fallback") == 0  ? auto_fallback()
                                                : 2;
    printf("%s: %s\n", s, rc == 0 ? "PASS" : "FAIL");
    return rc;
}

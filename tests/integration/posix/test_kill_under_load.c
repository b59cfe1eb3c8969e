/* Acknowledged delivery with a sidecar killed under load: 8 client
 * processes (subprocess mode, the first starts the sidecar) send traces at
 * a steady pace while the test SIGKILLs their sidecar twice. Afterwards
 * every trace is accounted for, exactly:
 *   - delivered once to the intake (decoded with python3-msgpack), or
 *   - refused to the caller by sc_send_trace (counted by the client), or
 *   - held by a killed sidecar: counted by its successor from the ledger
 *     (`predecessor.lost_traces`);
 * traces a killed sidecar had sent without seeing the answer
 * (`predecessor.unconfirmed_traces`) may have arrived or not. Frames written
 * into a dead sidecar's socket are sent again, frames it had handled are
 * not handled twice: no duplicates. */
#include "harness.h"
#include "intake_dir.h"
#include "sidecar.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define CLIENTS 8
#define TRACES  3000 /* per client, ~3 s */
#define KILLS   2

static int client(const char *dir, int index)
{
    sc_config_t cfg;
    th_subprocess_config(&cfg, dir);
    cfg.connect_timeout_ms = 2000;
    cfg.client.reconnect_min_ms = 5;
    cfg.client.reconnect_max_ms = 50;
    if (sc_init(&cfg) != 0) {
        return 1;
    }
    uint8_t payload[64];
    unsigned refused = 0;
    for (int i = 0; i < TRACES; i++) {
        size_t len = th_trace_payload(payload, (uint64_t)index * 1000000 + i);
        refused += sc_send_trace(payload, len, 1) != 0;
        if (i % 10 == 9) {
            sc_flush();
            usleep(10000);
        }
    }
    int rc = UV_ETIMEDOUT;
    for (int attempt = 0; attempt < 5 && rc != 0; attempt++) {
        rc = sc_flush_sync(5000);
    }
    sc_shutdown();
    char path[512];
    snprintf(path, sizeof path, "%s/refused.%d", dir, index);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%u\n", refused);
        fclose(f);
    }
    if (rc != 0) {
        fprintf(stderr, "client %d: last barrier: %s\n", index,
                sc_strerror(rc));
    }
    return rc == 0 && f != NULL ? 0 : 1;
}

static char ep[256];

/* The sidecar's stats member `key`, UINT64_MAX when it does not answer. */
static uint64_t stat_of(const char *key)
{
    char *json = th_stats(ep);
    uint64_t v = th_json_u64(json, key);
    free(json);
    return v;
}

/* Waits until the sidecar (not `not_pid`) has handled `traces`; kills it. */
static uint32_t kill_sidecar_after(uint64_t traces, uint32_t not_pid)
{
    for (int i = 0; i < 1000; i++) {
        uint64_t pid = stat_of("pid");
        if (pid != UINT64_MAX && pid != not_pid && stat_of("trace") >= traces &&
            stat_of("trace") != UINT64_MAX) {
            kill((pid_t)pid, SIGKILL);
            while (kill((pid_t)pid, 0) == 0) {
                usleep(1000);
            }
            printf("killed sidecar pid %llu after %llu traces\n",
                   (unsigned long long)pid, (unsigned long long)traces);
            return (uint32_t)pid;
        }
        usleep(20000);
    }
    return 0;
}

/* Traces the intake received and trace ids seen twice, decoded by
 * tests/intake/traces.py. */
static bool intake_counts(const char *dir, uint64_t *traces, uint64_t *dups)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys; sys.path.insert(0, \"%s/tests/intake\"); "
             "import traces as t; "
             "s = t.summarize(t.records_from_file(sys.argv[1])); "
             "print(s[\"traces\"], len(s[\"duplicate_trace_ids\"]), "
             "len(s[\"decode_errors\"]))' %s/records.jsonl",
             SIDECAR_PYTHON, SIDECAR_SOURCE_DIR, dir);
    FILE *p = popen(cmd, "r");
    unsigned long long t = 0, d = 0, e = 0;
    bool ok = p != NULL && fscanf(p, "%llu %llu %llu", &t, &d, &e) == 3;
    if (p != NULL) {
        ok = pclose(p) == 0 && ok;
    }
    *traces = t;
    *dups = d;
    return ok && e == 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/sidecar-kill-XXXXXX";
    int port = th_intake_in_new_dir(dir);
    if (port == 0) {
        return 1;
    }
    snprintf(ep, sizeof ep, "%s/sidecar-%s-%u.sock", dir, sc_version(),
             (unsigned)geteuid());

    pid_t kids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            _exit(client(dir, i));
        }
    }
    uint32_t killed = 0;
    for (int k = 0; k < KILLS; k++) {
        killed = kill_sidecar_after(CLIENTS * TRACES / 5, killed);
        if (killed == 0) {
            fprintf(stderr, "no sidecar to kill (round %d)\n", k);
        }
    }
    int failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    uint64_t refused = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/refused.%d", dir, i);
        FILE *f = fopen(path, "r");
        unsigned n = 0;
        if (f != NULL && fscanf(f, "%u", &n) == 1) {
            refused += n;
        }
        if (f != NULL) {
            fclose(f);
        }
    }
    uint64_t lost = stat_of("lost_traces");
    uint64_t unconfirmed = stat_of("unconfirmed_traces");
    uint64_t duplicates_dropped = stat_of("duplicates_dropped");
    /* The last sidecar delivers what it holds as it stops. */
    uint64_t pid = stat_of("pid");
    if (pid != UINT64_MAX) {
        kill((pid_t)pid, SIGTERM);
        for (int i = 0; i < 1000 && kill((pid_t)pid, 0) == 0; i++) {
            usleep(10000);
        }
    }
    th_intake_stop();
    uint64_t delivered = 0, duplicates = 0;
    bool decoded = intake_counts(dir, &delivered, &duplicates);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);

    uint64_t sent = (uint64_t)CLIENTS * TRACES;
    uint64_t accounted = delivered + refused + lost;
    printf("sent %llu: delivered %llu (duplicates %llu), refused %llu, lost "
           "with a killed sidecar %llu, unconfirmed %llu; the last sidecar "
           "dropped %llu resent duplicates; clients failed %d\n",
           (unsigned long long)sent, (unsigned long long)delivered,
           (unsigned long long)duplicates, (unsigned long long)refused,
           (unsigned long long)lost, (unsigned long long)unconfirmed,
           (unsigned long long)duplicates_dropped, failed);
    bool ok = failed == 0 && decoded && killed != 0 && duplicates == 0 &&
              lost != UINT64_MAX && unconfirmed != UINT64_MAX &&
              accounted <= sent && sent <= accounted + unconfirmed;
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

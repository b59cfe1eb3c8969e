/* A container's pid 1 that uses the library and exits: its end kills every
 * process of its pid namespace, the sidecar it spawned too, so its exit
 * flush must wait for delivery itself. Here pid 1 (unshare --fork --pid
 * --mount-proc) sends 5 traces and returns from main without any flush,
 * while the agent answers the first traces request 503: the retry must
 * happen before pid 1 is gone -- every trace arrives. */
#define _GNU_SOURCE
#include "harness.h"
#include "intake_dir.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRACES 5

static int pid1(const char *dir)
{
    if (getpid() != 1) {
        fprintf(stderr, "not pid 1 but %d\n", (int)getpid());
        return 1;
    }
    sc_config_t cfg;
    th_subprocess_config(&cfg, dir);
    cfg.exit_flush_timeout_ms = 3000;
    if (sc_init(&cfg) != 0) {
        return 1;
    }
    uint8_t payload[64];
    for (int i = 0; i < TRACES; i++) {
        size_t len = th_trace_payload(payload, 7000 + (uint64_t)i);
        if (sc_send_trace(payload, len, 1) != 0) {
            return 1;
        }
    }
    return 0; /* no flush: the exit handler's job */
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "pid1") == 0) {
        return pid1(argv[2]);
    }
    if (geteuid() != 0 || run("unshare --fork --pid --mount-proc true") != 0) {
        printf("SKIP: needs root and unshare(1) for a pid namespace\n");
        return 77;
    }
    char dir[] = "/tmp/sidecar-pid1-XXXXXX";
    int port = th_intake_in_new_dir(dir);
    if (port == 0) {
        return 1;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import json, urllib.request as u; "
             "u.urlopen(u.Request(\"http://127.0.0.1:%d/_intake/behavior\", "
             "data=json.dumps({\"path_prefix\": \"/v0.4/traces\", \"mode\": "
             "\"status\", \"status\": 503, \"count\": 1}).encode(), "
             "method=\"POST\"))'",
             SIDECAR_PYTHON, port);
    if (run(cmd) != 0) {
        fprintf(stderr, "cannot set the intake's behaviour\n");
        return 1;
    }
    snprintf(cmd, sizeof cmd,
             "DD_TRACE_AGENT_URL=http://127.0.0.1:%d "
             "unshare --fork --pid --mount-proc %s pid1 %s",
             port, argv[0], dir);
    int status = run(cmd);
    usleep(500000); /* a request the sidecar would still make (none) */
    th_intake_stop();
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys; sys.path.insert(0, \"%s/tests/intake\"); "
             "import traces as t; r = t.records_from_file(sys.argv[1]); "
             "s = t.summarize(r, accepted_only=True); "
             "print(s[\"traces\"], sum(1 for x in r if x.get(\"answered\") == "
             "503))' %s/records.jsonl > %s/count",
             SIDECAR_PYTHON, SIDECAR_SOURCE_DIR, dir, dir);
    int counted = run(cmd);
    snprintf(cmd, sizeof cmd, "%s/count", dir);
    FILE *f = fopen(cmd, "r");
    unsigned delivered = 0, refused = 0;
    bool read = f != NULL && fscanf(f, "%u %u", &delivered, &refused) == 2;
    if (f != NULL) {
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
    printf("pid 1 exited with %d; the agent answered %u request(s) 503; %u "
           "of %d traces delivered\n",
           status, refused, delivered, TRACES);
    bool ok = status == 0 && counted == 0 && read && refused == 1 &&
              delivered == TRACES;
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

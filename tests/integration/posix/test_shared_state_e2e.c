/* A worker process reads what the sidecar published (docs/shared-state.md)
 * without a round trip: the agent's /info answer (from the local intake), the
 * rates of the last trace answer, and the sidecar's health.
 *
 * `test_shared_state_e2e file`: the segment must be the file fallback
 * ($TMPDIR/<name>.shm) and nothing may be in /dev/shm; shm_fallback.sh runs
 * it where shared memory is unusable (read-only, refused, missing). */
#include "harness.h"
#include "intake_dir.h"
#include "shared_state.h"
#include "sidecar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the segment of `ep` is: 'f' (the file), 's' (/dev/shm), 'b' (both),
 * '-' (neither). */
static char segment_place(const char *ep)
{
    char name[128], path[512];
    sc_shared_name(ep, name, sizeof name);
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/%s.shm", tmp != NULL && *tmp ? tmp : "/tmp",
             name);
    struct stat st;
    bool file = stat(path, &st) == 0;
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    bool shm = stat(path, &st) == 0;
    printf("segment %s: file %s, /dev/shm %s\n", name, file ? "yes" : "no",
           shm ? "yes" : "no");
    return file && shm ? 'b' : file ? 'f' : shm ? 's' : '-';
}

int main(int argc, char **argv)
{
    bool want_file = argc > 1 && strcmp(argv[1], "file") == 0;
    char dir[] = "/tmp/sidecar-shm-e2e-XXXXXX";
    int port = th_intake_in_new_dir(dir);
    if (port == 0) {
        return 1;
    }
    char ep[128];
    th_endpoint(ep, sizeof ep, "shm");
    int pid = th_sidecar_start(ep, NULL);
    if (pid == 0) {
        th_intake_stop();
        return 1;
    }
    /* One trace so that a rate_by_service answer comes back. */
    sc_client_options_t o = {.endpoint = ep};
    sc_client_t *c = sc_client_new(&o);
    uint8_t payload[64];
    size_t len = th_trace_payload(payload, 1);
    sc_client_send_trace(c, payload, len, 1);
    sc_client_flush_sync(c, 3000);
    sc_client_free(c);

    pid_t worker = fork();
    if (worker == 0) {
        /* Polls until /info and the rates are published (the first trace
         * flush happens after the flush interval). */
        for (int i = 0; i < 500; i++) {
            sc_agent_state_t st;
            if (sc_agent_state_read(ep, &st) == 0 && st.info_json != NULL &&
                st.rates_json != NULL) {
                bool ok = st.healthy && st.sidecar_pid == (uint32_t)pid &&
                          strstr(st.info_json, "/v0.4/traces") != NULL &&
                          strstr(st.rates_json, "service:") != NULL;
                printf("worker read: pid=%u healthy=%d info=%.60s... "
                       "rates=%s\n",
                       st.sidecar_pid, st.healthy, st.info_json, st.rates_json);
                sc_agent_state_free(&st);
                fflush(stdout);
                _exit(ok ? 0 : 1);
            }
            usleep(10000);
        }
        fprintf(stderr, "nothing published within 5 s\n");
        _exit(1);
    }
    int status = 0;
    waitpid(worker, &status, 0);
    char place = segment_place(ep);
    bool place_ok = want_file ? place == 'f' : place != '-';
    th_sidecar_stop(pid, false);
    /* Stopped: the segment is removed with the sidecar. */
    sc_agent_state_t gone;
    int after = sc_agent_state_read(ep, &gone);
    th_intake_stop();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
    bool ok =
        WIFEXITED(status) && WEXITSTATUS(status) == 0 && after != 0 && place_ok;
    printf("%s (read after stop: %s)\n", ok ? "PASS" : "FAIL",
           sc_strerror(after));
    return ok ? 0 : 1;
}

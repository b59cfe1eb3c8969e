/* Peers that give up: a request (Ping, Stats, Flush) whose sender closes
 * the connection before the reply is written. The sidecar's reply then
 * meets a closed socket; that must never raise SIGPIPE in the sidecar
 * (subprocess mode: a daemon started with default signal dispositions) nor
 * in the host (thread mode: the listener thread runs inside this process,
 * whose SIGPIPE disposition is left at the default, as a host leaves it).
 *
 * Usage: test_sigpipe <subprocess|thread> <rounds>
 * Meanwhile a good client sends traces; every one must be counted by the
 * sidecar, and the sidecar must be the same process at the end. */
#include "codec.h"
#include "harness.h"
#include "sidecar.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

static atomic_bool stop;
static atomic_ullong traces_sent;

static int connect_raw(const char *endpoint)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t len = strlen(endpoint);
    if (len >= sizeof a.sun_path) {
        return -1;
    }
    memcpy(a.sun_path, endpoint, len);
    if (endpoint[0] == '@') {
        a.sun_path[0] = '\0'; /* abstract */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a,
                           (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                       len)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Hello, then a burst of requests that all want replies, sent in one
 * write; the connection is closed at once, before any reply. */
static bool give_up_once(const char *endpoint, uint64_t round)
{
    sc_buf_t out = {0};
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_hello_tag;
    env.action.hello.protocol_version = 1;
    env.action.hello.pid = (uint32_t)getpid();
    sc_codec_append_frame(&out, &env);
    for (int i = 0; i < 16; i++) {
        memset(&env, 0, sizeof env);
        env.seq = round * 100 + (uint64_t)i + 1;
        switch (i % 3) {
        case 0:
            env.which_action = sidecar_v1_Envelope_ping_tag;
            break;
        case 1:
            env.which_action = sidecar_v1_Envelope_stats_request_tag;
            break;
        default:
            env.which_action = sidecar_v1_Envelope_flush_tag;
            env.action.flush.has_timeout_ms = true;
            env.action.flush.timeout_ms = 100;
            break;
        }
        sc_codec_append_frame(&out, &env);
    }
    int fd = connect_raw(endpoint);
    bool ok = fd >= 0 &&
              send(fd, out.data, out.len, MSG_NOSIGNAL) == (ssize_t)out.len;
    if (fd >= 0) {
        close(fd);
    }
    sc_buf_free(&out);
    return ok;
}

static void good_client(void *arg)
{
    (void)arg;
    uint8_t payload[64];
    for (uint64_t n = 1; !atomic_load(&stop); n++) {
        size_t len = th_trace_payload(payload, n);
        if (sc_send_trace(payload, len, 1) == 0) {
            atomic_fetch_add(&traces_sent, 1);
        }
        if (n % 50 == 0) {
            sc_flush();
            usleep(1000);
        }
    }
    sc_flush_sync(5000);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s subprocess|thread ROUNDS\n", argv[0]);
        return 2;
    }
    bool thread = strcmp(argv[1], "thread") == 0;
    int rounds = atoi(argv[2]);
    signal(SIGPIPE, SIG_DFL); /* as a host leaves it */
    setvbuf(stdout, NULL, _IOLBF, 0);

    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sc-pipe-%d", (int)getpid());
    mkdir(dir, 0700);
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.mode = thread ? SC_MODE_THREAD : SC_MODE_SUBPROCESS;
    cfg.endpoint_dir = dir;
    cfg.sidecar_path = th_sidecar_bin();
    if (sc_init(&cfg) != 0) {
        fprintf(stderr, "sc_init failed\n");
        return 1;
    }
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    sc_ping_result_t before, after;
    if (sc_ping(3000, &before) != 0) {
        fprintf(stderr, "no sidecar on %s\n", info.endpoint);
        return 1;
    }

    uv_thread_t good;
    uv_thread_create(&good, good_client, NULL);
    int failed_connects = 0;
    for (int r = 0; r < rounds; r++) {
        /* All from one process: the sidecar admits 64 connections per
         * process, and closes of the earlier ones may still be on their
         * way; a refused peer tries again shortly. */
        bool ok = false;
        for (int attempt = 0; attempt < 5 && !ok; attempt++) {
            ok = give_up_once(info.endpoint, (uint64_t)r);
            if (!ok) {
                usleep(20000);
            }
        }
        failed_connects += !ok;
    }
    usleep(200000); /* the last replies meet closed sockets */
    atomic_store(&stop, true);
    uv_thread_join(&good);

    int rc = sc_ping(3000, &after);
    char *json = th_stats(info.endpoint);
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    uint64_t sent = atomic_load(&traces_sent);
    printf("%s: %d give-up peers (%d could not connect); sidecar pid %u "
           "before, %u after (%s); traces sent %llu, counted %llu\n",
           argv[1], rounds, failed_connects, before.server_pid,
           after.server_pid, rc == 0 ? "ok" : sc_strerror(rc),
           (unsigned long long)sent, (unsigned long long)traces);
    if (!thread) {
        kill((pid_t)before.server_pid, SIGTERM);
    }
    sc_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    bool ok = rc == 0 && after.server_pid == before.server_pid &&
              failed_connects == 0 && traces == sent && sent > 0;
    if (!ok) {
        fprintf(stderr, "FAILED\n");
    }
    return ok ? 0 : 1;
}

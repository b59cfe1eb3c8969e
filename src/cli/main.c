/* The `sidecar` executable (SPEC §10).
 *
 *   sidecar run     [options]   the daemon, in the foreground
 *   sidecar ping    [options]   one round trip; prints pid, mode, time
 *   sidecar stats   [options]   the stats document (JSON)
 *   sidecar status  [options]   exit 0 when a sidecar answers, 3 otherwise
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 no sidecar
 * reachable (ping/stats/status). */
#include "daemon.h"
#include "endpoint.h"
#include "log.h"
#include "server.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3

typedef struct cli {
    const char *command;
    char endpoint[SC_ENDPOINT_MAX + 1];
    sc_daemon_options_t daemon;
    uint32_t timeout_ms;
} cli_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sidecar <command> [options]\n"
            "\n"
            "commands:\n"
            "  run      run the sidecar daemon in the foreground\n"
            "  ping     round trip to the running sidecar\n"
            "  stats    print the running sidecar's stats as JSON\n"
            "  status   exit 0 if a sidecar answers, 3 if none does\n"
            "\n"
            "options:\n"
            "  --endpoint NAME        endpoint ('@name' abstract socket, a\n"
            "                         path, or a pipe name); default: the\n"
            "                         subprocess-mode name of this user\n"
            "  --max-frame BYTES      largest accepted frame (default 4 MiB)\n"
            "  --max-reply-backlog B  unread reply bytes before a peer is\n"
            "                         closed (default 1 MiB)\n"
            "  --allow-uid UID        also admit peers of this uid\n"
            "                         (POSIX; repeatable)\n"
            "  --allow-sid SID        also admit peers of this user SID\n"
            "                         (Windows: added to the pipe's DACL;\n"
            "                         repeatable)\n"
            "  --idle-timeout MS      exit after MS without connections\n"
            "                         (default 0: never)\n"
            "  --rss-cap BYTES        watchdog: exit when RSS exceeds it\n"
            "                         (default 0: off)\n"
            "  --listen-fd N          serve an already bound socket (how\n"
            "                         clients hand over the endpoint)\n"
            "  --timeout MS           ping/stats/status timeout (1000)\n"
            "  --log-level LEVEL      error|warn|info|debug (warn)\n"
            "  --help, --version\n"
            "\n"
            "exit codes: 0 ok, 1 failure, 2 usage, 3 no sidecar reachable\n");
}

static int default_endpoint(char *out, size_t size)
{
    char identity[128];
    int rc = sc_plat_identity(identity, sizeof identity);
    if (rc != 0) {
        return rc;
    }
    sc_endpoint_params_t p = {
        .kind = sc_plat_default_endpoint_kind(),
        .version = sc_version(),
        .identity = identity,
        .dir = "/tmp/sidecar",
    };
    return sc_endpoint_name(out, size, &p);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(cli_t *cli, int argc, char **argv)
{
    sc_daemon_options_defaults(&cli->daemon);
    sc_server_config_t *server = &cli->daemon.server;
    cli->timeout_ms = 1000;
    cli->endpoint[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("sidecar %s\n", sc_version());
            exit(0);
        } else if (a[0] != '-' && cli->command == NULL) {
            cli->command = a;
            continue;
        } else if (val == NULL) {
            fprintf(stderr, "sidecar: %s needs a value\n", a);
            return EXIT_USAGE;
        } else if (strcmp(a, "--endpoint") == 0) {
            if (strlen(val) > SC_ENDPOINT_MAX) {
                fprintf(stderr, "sidecar: endpoint too long\n");
                return EXIT_USAGE;
            }
            strcpy(cli->endpoint, val);
        } else if (strcmp(a, "--log-level") == 0) {
            sc_log_level_t lvl;
            if (sc_log_parse_level(val, &lvl) != 0) {
                fprintf(stderr, "sidecar: bad log level '%s'\n", val);
                return EXIT_USAGE;
            }
            sc_log_configure(lvl, NULL);
        } else if (strcmp(a, "--allow-sid") == 0) {
            int rc = sc_access_add_sid(&server->access, val);
            if (rc != 0) {
                fprintf(stderr, "sidecar: --allow-sid %s: %s\n", val,
                        rc == UV_ENOSPC ? "too many (at most 8)"
                                        : "not a SID string (S-1-...)");
                return EXIT_USAGE;
            }
        } else if (!parse_u64(val, &n)) {
            fprintf(stderr, "sidecar: %s wants a number, not '%s'\n", a, val);
            return EXIT_USAGE;
        } else if (strcmp(a, "--max-frame") == 0) {
            server->max_frame = n;
        } else if (strcmp(a, "--max-reply-backlog") == 0) {
            server->max_reply_backlog = n;
        } else if (strcmp(a, "--idle-timeout") == 0) {
            server->idle_timeout_ms = n;
        } else if (strcmp(a, "--rss-cap") == 0) {
            cli->daemon.rss_cap = n;
        } else if (strcmp(a, "--listen-fd") == 0) {
            cli->daemon.listen_handle = (int64_t)n;
        } else if (strcmp(a, "--timeout") == 0) {
            cli->timeout_ms = (uint32_t)n;
        } else if (strcmp(a, "--allow-uid") == 0) {
            sc_access_t *acc = &server->access;
            if (acc->allowed_uid_count == SC_MAX_ALLOWED_UIDS ||
                n > UINT32_MAX) {
                fprintf(stderr, "sidecar: --allow-uid %s: %s\n", val,
                        n > UINT32_MAX ? "not a uid" : "too many (at most 16)");
                return EXIT_USAGE;
            }
            acc->allowed_uids[acc->allowed_uid_count++] = (uint32_t)n;
        } else {
            fprintf(stderr, "sidecar: unknown option %s\n", a);
            return EXIT_USAGE;
        }
        i++;
    }
    if (cli->command == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cli->endpoint[0] == '\0' &&
        default_endpoint(cli->endpoint, sizeof cli->endpoint) != 0) {
        fprintf(stderr, "sidecar: cannot name the default endpoint\n");
        return 1;
    }
    return 0;
}

/* ---- run -------------------------------------------------------------------
 */

typedef struct run_state {
    sc_daemon_t *daemon;
    sc_plat_stop_watch_t *stop_watch;
} run_state_t;

static void stop(run_state_t *r)
{
    sc_plat_stop_watch_close(r->stop_watch);
    r->stop_watch = NULL;
    sc_daemon_stop(r->daemon, NULL, NULL);
}

static void on_stop_request(void *arg)
{
    run_state_t *r = arg;
    if (r->stop_watch != NULL) {
        sc_log(SC_LOG_INFO, "asked to stop: shutting down");
        stop(r);
    }
}

static void on_self_stop(void *arg, const char *why)
{
    (void)why;
    run_state_t *r = arg;
    if (r->stop_watch != NULL) {
        stop(r);
    }
}

static int cmd_run(cli_t *cli)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    run_state_t r = {0};
    strcpy(cli->daemon.endpoint, cli->endpoint);
    cli->daemon.on_self_stop = on_self_stop;
    cli->daemon.arg = &r;
    int rc = sc_daemon_start(&loop, &cli->daemon, &r.daemon);
    if (rc != 0) {
        fprintf(stderr, "sidecar: cannot listen on %s: %s\n", cli->endpoint,
                uv_strerror(rc));
        return 1;
    }
    rc = sc_plat_stop_watch_start(&loop, on_stop_request, &r, &r.stop_watch);
    if (rc != 0) {
        fprintf(stderr, "sidecar: cannot watch for stop requests: %s\n",
                uv_strerror(rc));
        sc_daemon_stop(r.daemon, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        sc_daemon_free(r.daemon);
        uv_loop_close(&loop);
        return 1;
    }
    sc_log(SC_LOG_INFO, "listening on %s", cli->endpoint);
    uv_run(&loop, UV_RUN_DEFAULT);
    sc_daemon_free(r.daemon);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}

/* ---- ping / stats / status ----------------------------------------------- */

static int cmd_query(cli_t *cli)
{
    sc_client_options_t o = {.endpoint = cli->endpoint,
                             .connect_timeout_ms = cli->timeout_ms};
    sc_client_t *c = sc_client_new(&o);
    if (c == NULL) {
        return 1;
    }
    int rc;
    int status = 0;
    if (strcmp(cli->command, "stats") == 0) {
        char *json = NULL;
        rc = sc_client_sidecar_stats(c, cli->timeout_ms, &json);
        if (rc == 0) {
            printf("%s\n", json);
            free(json);
        }
    } else {
        sc_ping_result_t r;
        rc = sc_client_ping(c, cli->timeout_ms, &r);
        if (rc == 0) {
            printf("sidecar pid=%u mode=%s version=%s rtt_us=%.1f\n",
                   r.server_pid, r.mode, r.server_version,
                   (double)r.round_trip_ns / 1000.0);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "sidecar: no answer on %s: %s\n", cli->endpoint,
                sc_strerror(rc));
        status = EXIT_UNREACHABLE;
    }
    sc_client_free(c);
    return status;
}

int main(int argc, char **argv)
{
    cli_t cli = {0};
    int rc = parse_args(&cli, argc, argv);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(cli.command, "run") == 0) {
        return cmd_run(&cli);
    }
    if (strcmp(cli.command, "ping") == 0 || strcmp(cli.command, "stats") == 0 ||
        strcmp(cli.command, "status") == 0) {
        return cmd_query(&cli);
    }
    fprintf(stderr, "sidecar: unknown command '%s'\n", cli.command);
    usage(stderr);
    return EXIT_USAGE;
}

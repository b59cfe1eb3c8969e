/* The `sidecar` executable: options, per-command help, `run`.
 *
 *   sidecar run     [options]   the daemon, in the foreground
 *   sidecar ping    [options]   one round trip; prints pid, mode, time
 *   sidecar stats   [options]   the stats document (JSON)
 *   sidecar status  [options]   a summary for humans (--json for scripts)
 *   sidecar list    [options]   every sidecar and listener of this user
 *   sidecar help    [command]
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 no sidecar
 * reachable, 4 a sidecar answers but does not admit this user. */
#include "agent_url.h"
#include "cli.h"
#include "log.h"
#include "server.h"
#include "sidecar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum command_bit {
    C_RUN = 1,
    C_PING = 2,
    C_STATS = 4,
    C_STATUS = 8,
    C_LIST = 16,
    C_QUERY = C_PING | C_STATS | C_STATUS,
    C_ALL = C_RUN | C_QUERY | C_LIST,
};

typedef struct command {
    const char *name;
    unsigned bit;
    const char *summary;
    const char *details;
} command_t;

static const command_t commands[] = {
    {"run", C_RUN, "run the sidecar daemon in the foreground",
     "Listens on the endpoint and delivers what processes send to the\n"
     "agent. Logs a start line (version, endpoint, agent, pid) and every\n"
     "warning to stderr or --log-file. Stops on SIGINT/SIGTERM (Ctrl+C on\n"
     "Windows), after its idle timeout, or when RSS exceeds --rss-cap,\n"
     "delivering what it holds first.\n"},
    {"ping", C_PING, "one round trip to a running sidecar",
     "Prints the sidecar's pid, mode, version and the round trip time.\n"},
    {"stats", C_STATS, "print a running sidecar's stats document (JSON)",
     "The full counters: connections, actions, delivery and drops per\n"
     "destination, flag-evaluation aggregation (docs/delivery.md).\n"},
    {"status", C_STATUS, "is a sidecar running, and how is it doing",
     "A summary: pid, mode, uptime, clients, whether the agent answers,\n"
     "what was delivered, buffered and dropped. --json prints it as one\n"
     "JSON object (also when no sidecar answers).\n"},
    {"list", C_LIST, "every sidecar and thread-mode listener of this user",
     "Finds the endpoints of this user on this host (abstract sockets on\n"
     "Linux, socket files in --endpoint-dir, named pipes on Windows), of\n"
     "any version, and pings each one.\n"},
};

enum opt_id {
    O_ENDPOINT,
    O_ENDPOINT_DIR,
    O_PID,
    O_IDENTITY,
    O_TIMEOUT,
    O_JSON,
    O_AGENT_URL,
    O_MAX_FRAME,
    O_MAX_REPLY_BACKLOG,
    O_FRAME_TIMEOUT,
    O_ALLOW_UID,
    O_ALLOW_SID,
    O_IDLE_TIMEOUT,
    O_RSS_CAP,
    O_LISTEN_FD,
    O_LOG_LEVEL,
    O_LOG_FILE,
};

/* One option: which commands take it, its value (NULL: a flag), the range
 * of a number, its help. */
typedef struct option {
    const char *name;
    enum opt_id id;
    unsigned commands;
    const char *value;
    bool number;
    uint64_t min, max;
    const char *help;
} option_t;

#define MIB (1024u * 1024u)

static const option_t options[] = {
    {"--endpoint", O_ENDPOINT, C_RUN | C_QUERY, "NAME", false, 0, 0,
     "'@name' (Linux abstract socket), a socket\n"
     "path or a pipe name; default: this user's\n"
     "subprocess-mode endpoint"},
    {"--endpoint-dir", O_ENDPOINT_DIR, C_ALL, "DIR", false, 0, 0,
     "socket files in DIR instead of abstract names\n"
     "(env DD_TRACE_SIDECAR_ENDPOINT_DIR)"},
    {"--pid", O_PID, C_QUERY, "PID", true, 1, UINT32_MAX,
     "the thread-mode listener of master process PID"},
    {"--identity", O_IDENTITY, C_RUN | C_QUERY, "ID", false, 0, 0,
     "the default endpoint of another user: a uid (POSIX)\n"
     "or SID (Windows); e.g. a system-wide sidecar\n"
     "running as www-data for a root FPM master: 0"},
    {"--timeout", O_TIMEOUT, C_QUERY | C_LIST, "MS", true, 1, 600000,
     "how long to wait for an answer (1000)"},
    {"--json", O_JSON, C_STATUS, NULL, false, 0, 0,
     "the summary as one JSON object"},
    {"--agent-url", O_AGENT_URL, C_RUN, "URL", false, 0, 0,
     "the agent: http://host:port or unix:///path\n"
     "(env DD_TRACE_AGENT_URL, else DD_AGENT_HOST +\n"
     "DD_TRACE_AGENT_PORT, else localhost:8126)"},
    {"--max-frame", O_MAX_FRAME, C_RUN, "BYTES", true, 1024, 1024u * MIB,
     "largest accepted frame (4 MiB)"},
    {"--max-reply-backlog", O_MAX_REPLY_BACKLOG, C_RUN, "BYTES", true, 4096,
     1024u * MIB,
     "unread reply bytes before a peer is closed\n"
     "(1 MiB)"},
    {"--frame-timeout", O_FRAME_TIMEOUT, C_RUN, "MS", true, 0, 3600000,
     "close a peer whose frame is not complete MS\n"
     "after its first byte (10000; 0: never)"},
    {"--allow-uid", O_ALLOW_UID, C_RUN, "UID", true, 0, UINT32_MAX - 1,
     "also admit peers of this uid (POSIX;\n"
     "repeatable, at most 16)"},
    {"--allow-sid", O_ALLOW_SID, C_RUN, "SID", false, 0, 0,
     "also admit peers of this user SID (Windows:\n"
     "added to the pipe's DACL; repeatable, at most 8)"},
    {"--idle-timeout", O_IDLE_TIMEOUT, C_RUN, "MS", true, 0,
     30ull * 24 * 3600 * 1000, "exit after MS without connections (0: never)"},
    {"--rss-cap", O_RSS_CAP, C_RUN, "BYTES", true, 0, 1ull << 48,
     "watchdog: exit when RSS exceeds it (0: off;\n"
     "env DD_TRACE_SIDECAR_RSS_CAP)"},
    {"--listen-fd", O_LISTEN_FD, C_RUN, "N", true, 0, INT32_MAX,
     "serve an already bound socket (how the runtime\n"
     "hands its endpoint to a sidecar it starts)"},
    {"--log-level", O_LOG_LEVEL, C_ALL, "LEVEL", false, 0, 0,
     "error|warn|info|debug (env\n"
     "DD_TRACE_SIDECAR_LOG_LEVEL; default: info for\n"
     "run, warn otherwise)"},
    {"--log-file", O_LOG_FILE, C_ALL, "PATH", false, 0, 0,
     "append the log to PATH instead of stderr\n"
     "(env DD_TRACE_SIDECAR_LOG_FILE)"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char environment_help[] =
    "environment (the runtime in an application reads these too; every\n"
    "setting is listed in docs/settings.md):\n"
    "  DD_TRACE_AGENT_URL, DD_AGENT_HOST, DD_TRACE_AGENT_PORT   the agent\n"
    "  DD_TRACE_SIDECAR_ENDPOINT_DIR                            socket files\n"
    "  DD_TRACE_SIDECAR_LOG_LEVEL, DD_TRACE_SIDECAR_LOG_FILE    logging\n"
    "  DD_TRACE_SIDECAR_RSS_CAP                                 memory cap\n";

static const char exit_help[] =
    "exit codes: 0 ok, 1 failure, 2 usage, 3 no sidecar reachable,\n"
    "            4 a sidecar answers but does not admit this user\n";

static void print_option(FILE *f, const option_t *o)
{
    char head[48];
    snprintf(head, sizeof head, "%s%s%s", o->name, o->value ? " " : "",
             o->value ? o->value : "");
    fprintf(f, "  %-26s", head);
    for (const char *p = o->help; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "%.*s\n", len, p);
        p += len + (nl ? 1 : 0);
        if (*p != '\0') {
            fprintf(f, "  %-26s", "");
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sidecar <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < COUNT(commands); i++) {
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(f, "  %-8s %s\n", "help", "help on a command: sidecar help run");
    fprintf(f,
            "\n'sidecar <command> --help' lists the command's options.\n"
            "--version prints the version.\n\n%s\n%s",
            environment_help, exit_help);
}

static void command_usage(FILE *f, const command_t *c)
{
    fprintf(f, "usage: sidecar %s [options]\n\n%s\n%s\noptions:\n", c->name,
            c->summary, c->details);
    for (size_t i = 0; i < COUNT(options); i++) {
        if (options[i].commands & c->bit) {
            print_option(f, &options[i]);
        }
    }
    fprintf(f, "  %-26s%s\n\n%s\n%s", "--help", "this help", environment_help,
            exit_help);
}

static const command_t *find_command(const char *name)
{
    for (size_t i = 0; i < COUNT(commands); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static const option_t *find_option(const char *name)
{
    for (size_t i = 0; i < COUNT(options); i++) {
        if (strcmp(options[i].name, name) == 0) {
            return &options[i];
        }
    }
    return NULL;
}

/* A decimal number within [min, max]; no sign, no suffix, no overflow. */
static bool parse_number(const char *s, uint64_t min, uint64_t max,
                         uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

int cli_endpoint_name(const cli_t *cli, uint32_t master_pid,
                      const char *version, char *out, size_t size)
{
    char identity[128];
    int rc = 0;
    if (cli->identity[0] != '\0') {
        strcpy(identity, cli->identity);
    } else {
        rc = sc_plat_identity(identity, sizeof identity);
    }
    if (rc != 0) {
        return rc;
    }
    bool dir = cli->endpoint_dir != NULL && cli->endpoint_dir[0] != '\0';
    sc_endpoint_params_t p = {
        .kind = dir ? SC_ENDPOINT_FILESYSTEM : sc_plat_default_endpoint_kind(),
        .version = version,
        .identity = identity,
        .master_pid = master_pid != 0 ? sc_plat_master_name_pid(master_pid) : 0,
        .elected_thread =
            master_pid != 0 && sc_plat_master_name_pid(master_pid) == 0,
        .dir = dir ? cli->endpoint_dir : "/tmp/sidecar",
    };
    return sc_endpoint_name(out, size, &p);
}

/* Log settings are applied once every option is read: `run` logs at info
 * unless DD_TRACE_SIDECAR_LOG_LEVEL or --log-level says otherwise. */
typedef struct log_choice {
    const char *level;
    const char *file;
} log_choice_t;

static int apply_option(cli_t *cli, const option_t *o, const char *val,
                        uint64_t n, log_choice_t *log)
{
    sc_server_config_t *server = &cli->daemon.server;
    switch (o->id) {
    case O_ENDPOINT:
        if (strlen(val) > SC_ENDPOINT_MAX || val[0] == '\0') {
            fprintf(stderr, "sidecar: --endpoint: empty or longer than %d\n",
                    SC_ENDPOINT_MAX);
            return EXIT_USAGE;
        }
        strcpy(cli->endpoint, val);
        break;
    case O_ENDPOINT_DIR:
        cli->endpoint_dir = val;
        break;
    case O_PID:
        cli->master_pid = (uint32_t)n;
        break;
    case O_IDENTITY:
        if (val[0] == '\0' || strlen(val) >= sizeof cli->identity) {
            fprintf(stderr, "sidecar: --identity: empty or too long\n");
            return EXIT_USAGE;
        }
        strcpy(cli->identity, val);
        break;
    case O_TIMEOUT:
        cli->timeout_ms = (uint32_t)n;
        break;
    case O_JSON:
        cli->json = true;
        break;
    case O_AGENT_URL:
        if (sc_agent_addr_parse_url(val, &cli->daemon.flusher.agent) != 0) {
            fprintf(stderr,
                    "sidecar: --agent-url %s: not http://host[:port][/path] "
                    "nor unix:///path\n",
                    val);
            return EXIT_USAGE;
        }
        break;
    case O_MAX_FRAME:
        server->max_frame = (size_t)n;
        break;
    case O_MAX_REPLY_BACKLOG:
        server->max_reply_backlog = (size_t)n;
        break;
    case O_FRAME_TIMEOUT:
        server->frame_timeout_ms = n;
        break;
    case O_ALLOW_UID: {
        sc_access_t *acc = &server->access;
        if (acc->allowed_uid_count == SC_MAX_ALLOWED_UIDS) {
            fprintf(stderr, "sidecar: --allow-uid: at most %d\n",
                    SC_MAX_ALLOWED_UIDS);
            return EXIT_USAGE;
        }
        acc->allowed_uids[acc->allowed_uid_count++] = (uint32_t)n;
        break;
    }
    case O_ALLOW_SID: {
        int rc = sc_access_add_sid(&server->access, val);
        if (rc != 0) {
            fprintf(stderr, "sidecar: --allow-sid %s: %s\n", val,
                    rc == UV_ENOSPC ? "too many (at most 8)"
                                    : "not a SID string (S-1-...)");
            return EXIT_USAGE;
        }
        break;
    }
    case O_IDLE_TIMEOUT:
        server->idle_timeout_ms = n;
        break;
    case O_RSS_CAP:
        cli->daemon.rss_cap = (size_t)n;
        break;
    case O_LISTEN_FD:
        cli->daemon.listen_handle = (int64_t)n;
        break;
    case O_LOG_LEVEL: {
        sc_log_level_t lvl;
        if (sc_log_parse_level(val, &lvl) != 0) {
            fprintf(stderr,
                    "sidecar: --log-level %s: error, warn, info or debug\n",
                    val);
            return EXIT_USAGE;
        }
        log->level = val;
        break;
    }
    case O_LOG_FILE:
        log->file = val;
        break;
    }
    return 0;
}

static int apply_log(const cli_t *cli, const log_choice_t *log)
{
    const char *level = log->level;
    if (level == NULL && strcmp(cli->command, "run") == 0 &&
        getenv(SC_LOG_LEVEL_ENV) == NULL) {
        level = "info";
    }
    int rc = sc_set_logging(level, log->file);
    if (rc != 0 && log->file != NULL) {
        fprintf(stderr, "sidecar: --log-file %s: %s\n", log->file,
                uv_strerror(rc));
        return 1;
    }
    return 0;
}

/* DD_TRACE_SIDECAR_RSS_CAP for `run` (--rss-cap overrides it); a value
 * that is not a byte count within --rss-cap's range is ignored, said. */
static void rss_cap_from_env(cli_t *cli)
{
    const char *v = getenv("DD_TRACE_SIDECAR_RSS_CAP");
    if (v == NULL || *v == '\0') {
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || v[0] < '0' || v[0] > '9' ||
        n > 1ull << 48) {
        fprintf(stderr,
                "sidecar: ignoring DD_TRACE_SIDECAR_RSS_CAP=%s (bytes, at "
                "most 2^48)\n",
                v);
        return;
    }
    cli->daemon.rss_cap = (size_t)n;
}

static int parse_args(cli_t *cli, int argc, char **argv)
{
    sc_daemon_options_defaults(&cli->daemon);
    cli->timeout_ms = 1000;
    cli->endpoint_dir = getenv("DD_TRACE_SIDECAR_ENDPOINT_DIR");
    rss_cap_from_env(cli);
    log_choice_t log = {0};
    const command_t *cmd = NULL;
    if (argc >= 2 && argv[1][0] != '-') {
        cli->command = argv[1];
        if (strcmp(cli->command, "help") == 0) {
            const command_t *on = argc >= 3 ? find_command(argv[2]) : NULL;
            if (argc >= 3 && on == NULL) {
                fprintf(stderr, "sidecar: no command '%s'\n\n", argv[2]);
                usage(stderr);
                return EXIT_USAGE;
            }
            on != NULL ? command_usage(stdout, on) : usage(stdout);
            exit(0);
        }
        cmd = find_command(cli->command);
        if (cmd == NULL) {
            fprintf(stderr, "sidecar: unknown command '%s'\n\n", cli->command);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    for (int i = cmd != NULL ? 2 : 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cmd != NULL ? command_usage(stdout, cmd) : usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            printf("sidecar %s\n", sc_version());
            exit(0);
        }
        const option_t *o = find_option(a);
        if (o == NULL || cmd == NULL || (o->commands & cmd->bit) == 0) {
            if (a[0] != '-') {
                fprintf(stderr, "sidecar: unexpected argument '%s'\n", a);
            } else if (o == NULL) {
                fprintf(stderr, "sidecar: unknown option %s\n", a);
            } else if (cmd == NULL) {
                fprintf(stderr, "sidecar: %s before a command\n", a);
            } else {
                fprintf(stderr, "sidecar %s: %s is not an option of %s\n",
                        cmd->name, a, cmd->name);
            }
            fprintf(stderr, "(see 'sidecar %s%s--help')\n",
                    cmd != NULL ? cmd->name : "", cmd != NULL ? " " : "");
            return EXIT_USAGE;
        }
        const char *val = NULL;
        uint64_t n = 0;
        if (o->value != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sidecar: %s needs a value (%s)\n", a,
                        o->value);
                return EXIT_USAGE;
            }
            val = argv[++i];
            if (o->number && !parse_number(val, o->min, o->max, &n)) {
                fprintf(stderr,
                        "sidecar: %s %s: not a whole number from %llu to "
                        "%llu\n",
                        a, val, (unsigned long long)o->min,
                        (unsigned long long)o->max);
                return EXIT_USAGE;
            }
        }
        int rc = apply_option(cli, o, val, n, &log);
        if (rc != 0) {
            return rc;
        }
    }
    if (cmd == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (apply_log(cli, &log) != 0) {
        return 1;
    }
    if (cli->endpoint[0] == '\0' &&
        cli_endpoint_name(cli, cli->master_pid, sc_version(), cli->endpoint,
                          sizeof cli->endpoint) != 0) {
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
        sc_log(SC_LOG_INFO, "asked to stop: delivering what is held, then "
                            "exiting");
        stop(r);
    }
}

static void on_self_stop(void *arg, const char *why)
{
    run_state_t *r = arg;
    sc_log(SC_LOG_INFO, "stopping on its own (%s)", why);
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
        sc_log(SC_LOG_ERROR, "cannot listen on %s: %s", cli->endpoint,
               uv_strerror(rc));
        fprintf(stderr, "sidecar: cannot listen on %s: %s\n", cli->endpoint,
                uv_strerror(rc));
        uv_loop_close(&loop);
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
    char agent[SC_AGENT_URL_MAX + 16];
    sc_agent_addr_describe(&cli->daemon.flusher.agent, agent, sizeof agent);
    sc_log_banner(cli->daemon.listen_handle >= 0 ? "subprocess" : "daemon",
                  cli->endpoint, agent);
    sc_log(SC_LOG_DEBUG,
           "settings: max_frame=%zu max_reply_backlog=%zu idle_timeout_ms=%llu "
           "frame_timeout_ms=%llu rss_cap=%zu allowed_uids=%zu "
           "allowed_sids=%zu",
           cli->daemon.server.max_frame, cli->daemon.server.max_reply_backlog,
           (unsigned long long)cli->daemon.server.idle_timeout_ms,
           (unsigned long long)cli->daemon.server.frame_timeout_ms,
           cli->daemon.rss_cap, cli->daemon.server.access.allowed_uid_count,
           cli->daemon.server.access.allowed_sid_count);
    uv_run(&loop, UV_RUN_DEFAULT);
    sc_daemon_free(r.daemon);
    sc_log(SC_LOG_INFO, "stopped");
    return uv_loop_close(&loop) == 0 ? 0 : 1;
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
    if (strcmp(cli.command, "ping") == 0) {
        return cli_ping(&cli);
    }
    if (strcmp(cli.command, "stats") == 0) {
        return cli_stats(&cli);
    }
    if (strcmp(cli.command, "status") == 0) {
        return cli_status(&cli);
    }
    return cli_list(&cli);
}

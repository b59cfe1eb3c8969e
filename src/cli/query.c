/* `sidecar ping`, `stats`, `status` and `list`: questions to running
 * sidecars, answered for people (and, with --json, for scripts). */
#include "cli.h"
#include "json.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connection that was accepted and then closed (or refused by the pipe's
 * access control) means a sidecar runs there and did not admit us; a
 * connection refused or a missing name means none runs. */
static bool not_admitted(int rc)
{
    return rc == UV_ECONNRESET || rc == UV_EPIPE || rc == UV_EOF ||
           rc == UV_EACCES || rc == UV_EPERM;
}

static int report_failure(const cli_t *cli, int rc)
{
    if (not_admitted(rc)) {
        fprintf(stderr,
                "sidecar: a sidecar listens on %s but does not admit this "
                "user (%s): it runs as another user; start it with "
                "--allow-uid/--allow-sid (DD_TRACE_SIDECAR_ALLOWED_UIDS / "
                "_SIDS), or ask as its user\n",
                cli->endpoint, sc_strerror(rc));
        return EXIT_NOT_ADMITTED;
    }
    fprintf(stderr, "sidecar: no sidecar answers on %s (%s)\n", cli->endpoint,
            sc_strerror(rc));
    return EXIT_UNREACHABLE;
}

static sc_client_t *connect_to(const char *endpoint, uint32_t timeout_ms)
{
    sc_client_options_t o = {.endpoint = endpoint,
                             .connect_timeout_ms = timeout_ms};
    return sc_client_new(&o);
}

int cli_ping(cli_t *cli)
{
    sc_client_t *c = connect_to(cli->endpoint, cli->timeout_ms);
    if (c == NULL) {
        return 1;
    }
    sc_ping_result_t r;
    int rc = sc_client_ping(c, cli->timeout_ms, &r);
    sc_client_free(c);
    if (rc != 0) {
        return report_failure(cli, rc);
    }
    printf("sidecar pid=%u mode=%s version=%s rtt_us=%.1f\n", r.server_pid,
           r.mode, r.server_version, (double)r.round_trip_ns / 1000.0);
    return 0;
}

int cli_stats(cli_t *cli)
{
    sc_client_t *c = connect_to(cli->endpoint, cli->timeout_ms);
    if (c == NULL) {
        return 1;
    }
    char *json = NULL;
    int rc = sc_client_sidecar_stats(c, cli->timeout_ms, &json);
    sc_client_free(c);
    if (rc != 0) {
        return report_failure(cli, rc);
    }
    printf("%s\n", json);
    free(json);
    return 0;
}

/* ---- status ------------------------------------------------------------- */

static uint64_t num_at(const char *doc, const char *path)
{
    size_t len = 0;
    const char *v = cli_json_find(doc, path, &len);
    return v != NULL ? strtoull(v, NULL, 10) : 0;
}

static bool true_at(const char *doc, const char *path)
{
    size_t len = 0;
    const char *v = cli_json_find(doc, path, &len);
    return v != NULL && len == 4 && memcmp(v, "true", 4) == 0;
}

static void string_at(const char *doc, const char *path, char *out, size_t size)
{
    size_t len = 0;
    const char *v = cli_json_find(doc, path, &len);
    out[0] = '\0';
    if (v != NULL && len >= 2 && v[0] == '"') {
        snprintf(out, size, "%.*s", (int)(len - 2), v + 1);
    }
}

/* Sum of every `"<key>":N` inside the value at `path`. */
static uint64_t sum_within(const char *doc, const char *path, const char *key)
{
    size_t len = 0;
    const char *v = cli_json_find(doc, path, &len);
    if (v == NULL) {
        return 0;
    }
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    size_t nl = strlen(needle);
    uint64_t sum = 0;
    for (const char *p = v; p < v + len;) {
        const char *hit = strstr(p, needle);
        if (hit == NULL || hit >= v + len) {
            break;
        }
        sum += strtoull(hit + nl, NULL, 10);
        p = hit + nl;
    }
    return sum;
}

typedef struct destination_view {
    const char *key;   /* in delivery */
    const char *label; /* for people */
    const char *unit;  /* what is counted in delivered / dropped */
    uint64_t delivered, buffered_bytes, dropped, failed_requests;
} destination_view_t;

typedef struct status_view {
    char version[32], mode[16], agent[256];
    uint64_t pid, uptime_ms, clients, accepted, rejected, rss;
    uint64_t info_ok, info_failed, delivery_ok;
    bool agent_info;
    destination_view_t dest[3];
} status_view_t;

static void read_status(const char *doc, status_view_t *s)
{
    string_at(doc, "version", s->version, sizeof s->version);
    string_at(doc, "mode", s->mode, sizeof s->mode);
    string_at(doc, "delivery.agent", s->agent, sizeof s->agent);
    s->pid = num_at(doc, "pid");
    s->uptime_ms = num_at(doc, "uptime_ms");
    s->clients = num_at(doc, "connections.active");
    s->accepted = num_at(doc, "connections.accepted");
    s->rejected = num_at(doc, "connections.rejected");
    s->rss = num_at(doc, "rss_bytes");
    s->agent_info = true_at(doc, "delivery.agent_info");
    s->info_ok = num_at(doc, "delivery.info.ok");
    s->info_failed = num_at(doc, "delivery.info.failed");
    static const destination_view_t kinds[3] = {
        {.key = "traces", .label = "traces", .unit = "traces"},
        {.key = "flagevaluations",
         .label = "flag evaluations",
         .unit = "payloads"},
        {.key = "exposures", .label = "exposures", .unit = "payloads"},
    };
    for (size_t i = 0; i < 3; i++) {
        destination_view_t *d = &s->dest[i];
        *d = kinds[i];
        char path[96];
        /* The stats document counts every destination under the keys of
         * traces ("payloads", "traces"); "traces" is meaningful for traces
         * only. */
        snprintf(path, sizeof path, "delivery.%s.delivered.%s", d->key,
                 d->unit);
        d->delivered = num_at(doc, path);
        snprintf(path, sizeof path, "delivery.%s.buffered.bytes", d->key);
        d->buffered_bytes = num_at(doc, path);
        snprintf(path, sizeof path, "delivery.%s.drops", d->key);
        d->dropped = sum_within(doc, path, d->unit);
        snprintf(path, sizeof path, "delivery.%s.delivery.failed", d->key);
        d->failed_requests = num_at(doc, path);
        snprintf(path, sizeof path, "delivery.%s.delivery.ok", d->key);
        s->delivery_ok += num_at(doc, path);
    }
}

static bool agent_reachable(const status_view_t *s)
{
    return s->agent_info || s->info_ok > 0 || s->delivery_ok > 0;
}

static void print_duration(uint64_t ms)
{
    uint64_t sec = ms / 1000;
    if (sec >= 86400) {
        printf("%llud ", (unsigned long long)(sec / 86400));
    }
    printf("%02llu:%02llu:%02llu", (unsigned long long)(sec % 86400 / 3600),
           (unsigned long long)(sec % 3600 / 60),
           (unsigned long long)(sec % 60));
}

static void print_status(const cli_t *cli, const status_view_t *s)
{
    printf("sidecar %s on %s: running\n", s->version, cli->endpoint);
    printf("  pid %llu, mode %s, up ", (unsigned long long)s->pid, s->mode);
    print_duration(s->uptime_ms);
    printf(", RSS %.1f MiB\n", (double)s->rss / (1024.0 * 1024.0));
    printf("  clients           %llu connected (%llu accepted, %llu "
           "rejected)\n",
           (unsigned long long)s->clients, (unsigned long long)s->accepted,
           (unsigned long long)s->rejected);
    printf("  agent             %s: %s (/info %llu ok, %llu failed)\n",
           s->agent, agent_reachable(s) ? "reachable" : "NOT reachable",
           (unsigned long long)s->info_ok, (unsigned long long)s->info_failed);
    for (size_t i = 0; i < 3; i++) {
        const destination_view_t *d = &s->dest[i];
        printf("  %-17s delivered %llu %s, buffered %llu B, dropped %llu, "
               "failed requests %llu\n",
               d->label, (unsigned long long)d->delivered,
               strcmp(d->unit, "traces") == 0 ? "traces" : "batches",
               (unsigned long long)d->buffered_bytes,
               (unsigned long long)d->dropped,
               (unsigned long long)d->failed_requests);
    }
    printf("  (every counter: sidecar stats --endpoint %s)\n", cli->endpoint);
}

static void json_status(const cli_t *cli, const status_view_t *s,
                        const char *error, int exit_code)
{
    sc_buf_t buf = {0};
    sc_json_t j;
    sc_json_init(&j, &buf);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "endpoint");
    sc_json_string(&j, cli->endpoint, strlen(cli->endpoint));
    sc_json_key_str(&j, "running");
    sc_json_bool(&j, s != NULL || exit_code == EXIT_NOT_ADMITTED);
    if (s == NULL) {
        const char *state = exit_code == EXIT_NOT_ADMITTED ? "not admitted"
                                                           : "not running";
        sc_json_key_str(&j, "state");
        sc_json_string(&j, state, strlen(state));
        sc_json_key_str(&j, "error");
        sc_json_string(&j, error, strlen(error));
    } else {
        sc_json_key_str(&j, "pid");
        sc_json_uint64(&j, s->pid);
        sc_json_key_str(&j, "version");
        sc_json_string(&j, s->version, strlen(s->version));
        sc_json_key_str(&j, "mode");
        sc_json_string(&j, s->mode, strlen(s->mode));
        sc_json_key_str(&j, "uptime_ms");
        sc_json_uint64(&j, s->uptime_ms);
        sc_json_key_str(&j, "clients");
        sc_json_uint64(&j, s->clients);
        sc_json_key_str(&j, "rss_bytes");
        sc_json_uint64(&j, s->rss);
        sc_json_key_str(&j, "agent");
        sc_json_string(&j, s->agent, strlen(s->agent));
        sc_json_key_str(&j, "agent_reachable");
        sc_json_bool(&j, agent_reachable(s));
        for (size_t i = 0; i < 3; i++) {
            const destination_view_t *d = &s->dest[i];
            sc_json_key_str(&j, d->key);
            sc_json_object_begin(&j);
            sc_json_key_str(&j, "delivered");
            sc_json_uint64(&j, d->delivered);
            sc_json_key_str(&j, "buffered_bytes");
            sc_json_uint64(&j, d->buffered_bytes);
            sc_json_key_str(&j, "dropped");
            sc_json_uint64(&j, d->dropped);
            sc_json_key_str(&j, "failed_requests");
            sc_json_uint64(&j, d->failed_requests);
            sc_json_object_end(&j);
        }
    }
    sc_json_object_end(&j);
    if (sc_json_ok(&j)) {
        printf("%.*s\n", (int)buf.len, (const char *)buf.data);
    }
    sc_buf_free(&buf);
}

int cli_status(cli_t *cli)
{
    sc_client_t *c = connect_to(cli->endpoint, cli->timeout_ms);
    if (c == NULL) {
        return 1;
    }
    char *doc = NULL;
    int rc = sc_client_sidecar_stats(c, cli->timeout_ms, &doc);
    sc_client_free(c);
    if (rc != 0) {
        int code = not_admitted(rc) ? EXIT_NOT_ADMITTED : EXIT_UNREACHABLE;
        if (cli->json) {
            json_status(cli, NULL, sc_strerror(rc), code);
        }
        return report_failure(cli, rc);
    }
    status_view_t s = {0};
    read_status(doc, &s);
    free(doc);
    if (cli->json) {
        json_status(cli, &s, NULL, 0);
    } else {
        print_status(cli, &s);
    }
    return 0;
}

/* ---- list --------------------------------------------------------------- */

#define LIST_MAX 256

typedef struct found {
    const cli_t *cli;
    const char *identity;
    char names[LIST_MAX][SC_ENDPOINT_MAX + 1];
    size_t count;
} found_t;

/* "sidecar-<version>-<identity>[-<pid>|-thread][.sock]" with our identity;
 * versions never hold '-' (endpoint.c keeps [A-Za-z0-9._]). */
static bool ours(const char *endpoint, const char *identity)
{
    const char *base = strstr(endpoint, "sidecar-");
    if (base == NULL) {
        return false;
    }
    const char *dash = strchr(base + strlen("sidecar-"), '-');
    if (dash == NULL) {
        return false;
    }
    size_t il = strlen(identity);
    if (strncmp(dash + 1, identity, il) != 0) {
        return false;
    }
    char next = dash[1 + il];
    return next == '\0' || next == '-' || next == '.';
}

static void collect(void *arg, const char *endpoint)
{
    found_t *f = arg;
    if (!ours(endpoint, f->identity) || f->count == LIST_MAX ||
        strlen(endpoint) > SC_ENDPOINT_MAX) {
        return;
    }
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->names[i], endpoint) == 0) {
            return; /* a pipe with several instances */
        }
    }
    strcpy(f->names[f->count++], endpoint);
}

int cli_list(cli_t *cli)
{
    char identity[128];
    if (sc_plat_identity(identity, sizeof identity) != 0) {
        fprintf(stderr, "sidecar: cannot tell who this user is\n");
        return 1;
    }
    static found_t f;
    f.cli = cli;
    f.identity = identity;
    f.count = 0;
    int rc = sc_plat_list_endpoints(NULL, "sidecar-", collect, &f);
    if (rc != 0) {
        fprintf(stderr, "sidecar: cannot list endpoints: %s\n",
                uv_strerror(rc));
    }
    if (cli->endpoint_dir != NULL && cli->endpoint_dir[0] != '\0') {
        sc_plat_list_endpoints(cli->endpoint_dir, "sidecar-", collect, &f);
    }
    if (f.count == 0) {
        printf("no sidecar endpoint of this user (identity %s)\n", identity);
        return rc == 0 ? 0 : 1;
    }
    printf("%-44s %-10s %-8s %-8s %s\n", "ENDPOINT", "MODE", "PID", "VERSION",
           "STATE");
    for (size_t i = 0; i < f.count; i++) {
        sc_client_t *c = connect_to(f.names[i], cli->timeout_ms);
        sc_ping_result_t r = {0};
        int prc =
            c != NULL ? sc_client_ping(c, cli->timeout_ms, &r) : UV_ENOMEM;
        sc_client_free(c);
        if (prc == 0) {
            printf("%-44s %-10s %-8u %-8s answering\n", f.names[i], r.mode,
                   (unsigned)r.server_pid, r.server_version);
        } else {
            printf("%-44s %-10s %-8s %-8s %s (%s)\n", f.names[i], "?", "?", "?",
                   not_admitted(prc) ? "not admitting this user"
                                     : "not answering",
                   sc_strerror(prc));
        }
    }
    return 0;
}

/* ---- a small JSON path lookup over the stats document ---------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
        p++;
    }
    return p;
}

/* Past the string starting at `p` (on its opening quote). */
static const char *skip_string(const char *p)
{
    for (p++; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Past the value starting at `p`. */
static const char *skip_value(const char *p)
{
    p = skip_ws(p);
    if (*p == '"') {
        return skip_string(p);
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p != '\0') {
            if (*p == '"') {
                p = skip_string(p);
                if (p == NULL) {
                    return NULL;
                }
                continue;
            }
            if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0) {
                    return p + 1;
                }
            }
            p++;
        }
        return NULL;
    }
    while (*p != '\0' && *p != ',' && *p != '}' && *p != ']' && *p != ' ') {
        p++;
    }
    return p;
}

const char *cli_json_find(const char *doc, const char *path, size_t *len)
{
    const char *p = skip_ws(doc);
    while (*path != '\0') {
        const char *dot = strchr(path, '.');
        size_t seg = dot != NULL ? (size_t)(dot - path) : strlen(path);
        if (*p != '{') {
            return NULL;
        }
        p = skip_ws(p + 1);
        bool found = false;
        while (*p == '"') {
            const char *key = p + 1;
            const char *end = skip_string(p);
            if (end == NULL) {
                return NULL;
            }
            size_t klen = (size_t)(end - 1 - key);
            p = skip_ws(end);
            if (*p != ':') {
                return NULL;
            }
            p = skip_ws(p + 1);
            if (klen == seg && memcmp(key, path, seg) == 0) {
                found = true;
                break;
            }
            p = skip_value(p);
            if (p == NULL) {
                return NULL;
            }
            p = skip_ws(p);
            if (*p == ',') {
                p = skip_ws(p + 1);
            }
        }
        if (!found) {
            return NULL;
        }
        path += seg + (dot != NULL ? 1 : 0);
    }
    const char *end = skip_value(p);
    if (end == NULL) {
        return NULL;
    }
    *len = (size_t)(end - p);
    return p;
}

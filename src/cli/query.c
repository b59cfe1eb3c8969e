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

/* The string at `path`, its escapes undone (\uXXXX, which the sidecar
 * writes only for control characters, becomes '?'), cut to `size`. */
static void string_at(const char *doc, const char *path, char *out, size_t size)
{
    size_t len = 0, n = 0;
    const char *v = cli_json_find(doc, path, &len);
    out[0] = '\0';
    if (v == NULL || len < 2 || v[0] != '"') {
        return;
    }
    for (const char *p = v + 1, *end = v + len - 1; p < end && n + 1 < size;
         p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            c = *++p;
            if (c == 'u') {
                c = '?';
                p += p + 4 < end ? 4 : 0;
            } else if (c == 'n' || c == 't' || c == 'r' || c == 'b' ||
                       c == 'f') {
                c = ' ';
            }
        }
        out[n++] = c;
    }
    out[n] = '\0';
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

/* The last outcomes of one endpoint (docs/stats.md): ISO-8601 times, ""
 * for never. */
typedef struct outcome {
    char last_ok[32];
    char error_time[32];
    char error[400];
} outcome_t;

static void read_outcome(const char *doc, const char *path, outcome_t *o)
{
    char p[160];
    snprintf(p, sizeof p, "%s.last_ok", path);
    string_at(doc, p, o->last_ok, sizeof o->last_ok);
    snprintf(p, sizeof p, "%s.last_error.time", path);
    string_at(doc, p, o->error_time, sizeof o->error_time);
    snprintf(p, sizeof p, "%s.last_error.message", path);
    string_at(doc, p, o->error, sizeof o->error);
}

#define DESTINATIONS  3
#define STATUS_AGENTS 16

typedef struct destination_view {
    const char *key;   /* in delivery */
    const char *label; /* for people */
    const char *unit;  /* what its payloads hold: the stats key */
    uint64_t delivered, buffered_bytes, dropped, failed_requests;
} destination_view_t;

static const destination_view_t destinations[DESTINATIONS] = {
    {.key = "traces", .label = "traces", .unit = "traces"},
    {.key = "flagevaluations", .label = "flag evaluations", .unit = "events"},
    {.key = "exposures", .label = "exposures", .unit = "exposures"},
};

/* One agent of "agents": where, which version, how it answers. */
typedef struct agent_view {
    char url[256], version[64];
    bool is_default, reachable;
    uint64_t info_ok, info_failed;
    outcome_t info;
    outcome_t dest[DESTINATIONS];
} agent_view_t;

typedef struct status_view {
    char version[32], mode[16];
    uint64_t pid, uptime_ms, clients, accepted, rejected, rss;
    destination_view_t dest[DESTINATIONS]; /* all agents together */
    size_t agent_count;
    agent_view_t agents[STATUS_AGENTS];
} status_view_t;

static void read_agent(const char *doc, size_t index, agent_view_t *a)
{
    char base[32], path[160];
    snprintf(base, sizeof base, "agents.%zu", index);
    snprintf(path, sizeof path, "%s.agent", base);
    string_at(doc, path, a->url, sizeof a->url);
    snprintf(path, sizeof path, "%s.agent_version", base);
    string_at(doc, path, a->version, sizeof a->version);
    snprintf(path, sizeof path, "%s.default", base);
    a->is_default = true_at(doc, path);
    snprintf(path, sizeof path, "%s.info.ok", base);
    a->info_ok = num_at(doc, path);
    snprintf(path, sizeof path, "%s.info.failed", base);
    a->info_failed = num_at(doc, path);
    snprintf(path, sizeof path, "%s.info", base);
    read_outcome(doc, path, &a->info);
    snprintf(path, sizeof path, "%s.agent_info", base);
    a->reachable = true_at(doc, path) || a->info_ok > 0;
    for (size_t i = 0; i < DESTINATIONS; i++) {
        snprintf(path, sizeof path, "%s.%s.delivery.ok", base,
                 destinations[i].key);
        a->reachable = a->reachable || num_at(doc, path) > 0;
        snprintf(path, sizeof path, "%s.%s.delivery", base,
                 destinations[i].key);
        read_outcome(doc, path, &a->dest[i]);
    }
}

static void read_status(const char *doc, status_view_t *s)
{
    string_at(doc, "version", s->version, sizeof s->version);
    string_at(doc, "mode", s->mode, sizeof s->mode);
    s->pid = num_at(doc, "pid");
    s->uptime_ms = num_at(doc, "uptime_ms");
    s->clients = num_at(doc, "connections.active");
    s->accepted = num_at(doc, "connections.accepted");
    s->rejected = num_at(doc, "connections.rejected");
    s->rss = num_at(doc, "rss_bytes");
    for (size_t i = 0; i < DESTINATIONS; i++) {
        destination_view_t *d = &s->dest[i];
        *d = destinations[i];
        char path[96];
        snprintf(path, sizeof path, "delivery.%s.delivered.%s", d->key,
                 d->unit);
        d->delivered = num_at(doc, path);
        snprintf(path, sizeof path, "delivery.%s.buffered.bytes", d->key);
        d->buffered_bytes = num_at(doc, path);
        snprintf(path, sizeof path, "delivery.%s.drops", d->key);
        d->dropped = sum_within(doc, path, d->unit);
        snprintf(path, sizeof path, "delivery.%s.delivery.failed", d->key);
        d->failed_requests = num_at(doc, path);
    }
    size_t len = 0;
    while (s->agent_count < STATUS_AGENTS) {
        char path[32];
        snprintf(path, sizeof path, "agents.%zu", s->agent_count);
        if (cli_json_find(doc, path, &len) == NULL) {
            break;
        }
        read_agent(doc, s->agent_count, &s->agents[s->agent_count]);
        s->agent_count++;
    }
}

/* The default agent (the first), whose reachability `status` reports. */
static const agent_view_t *default_agent(const status_view_t *s)
{
    static const agent_view_t none = {.url = "?"};
    return s->agent_count > 0 ? &s->agents[0] : &none;
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

/* "    <label>  last <ok_word> <time|never>[; last error <time>: <what>]" */
static void print_outcome(const char *label, const char *ok_word,
                          const outcome_t *o)
{
    printf("    %-17s last %s %s", label, ok_word,
           o->last_ok[0] != '\0' ? o->last_ok : "never");
    if (o->error_time[0] != '\0') {
        printf("; last error %s: %s", o->error_time, o->error);
    }
    printf("\n");
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
    for (size_t a = 0; a < s->agent_count; a++) {
        const agent_view_t *ag = &s->agents[a];
        printf("  agent%-12s %s: %s, version %s (/info %llu ok, %llu "
               "failed)\n",
               ag->is_default ? "" : " (session)", ag->url,
               ag->reachable ? "reachable" : "NOT reachable",
               ag->version[0] != '\0' ? ag->version : "unknown",
               (unsigned long long)ag->info_ok,
               (unsigned long long)ag->info_failed);
        print_outcome("/info", "answer", &ag->info);
        for (size_t i = 0; i < DESTINATIONS; i++) {
            print_outcome(destinations[i].label, "delivery", &ag->dest[i]);
        }
    }
    for (size_t i = 0; i < DESTINATIONS; i++) {
        const destination_view_t *d = &s->dest[i];
        printf("  %-17s delivered %llu %s, buffered %llu B, dropped %llu %s, "
               "failed requests %llu\n",
               d->label, (unsigned long long)d->delivered, d->unit,
               (unsigned long long)d->buffered_bytes,
               (unsigned long long)d->dropped, d->unit,
               (unsigned long long)d->failed_requests);
    }
    printf("  (every counter: sidecar stats --endpoint %s)\n", cli->endpoint);
}

static void json_text(sc_json_t *j, const char *key, const char *value)
{
    sc_json_key_str(j, key);
    sc_json_string(j, value, strlen(value));
}

/* "last_ok" and "last_error": {"message", "time"}, each when it happened. */
static void json_outcome(sc_json_t *j, const char *ok_key, const outcome_t *o)
{
    if (o->last_ok[0] != '\0') {
        json_text(j, ok_key, o->last_ok);
    }
    if (o->error_time[0] != '\0') {
        sc_json_key_str(j, "last_error");
        sc_json_object_begin(j);
        json_text(j, "message", o->error);
        json_text(j, "time", o->error_time);
        sc_json_object_end(j);
    }
}

static void json_status(const cli_t *cli, const status_view_t *s,
                        const char *error, int exit_code)
{
    sc_buf_t buf = {0};
    sc_json_t j;
    sc_json_init(&j, &buf);
    sc_json_object_begin(&j);
    json_text(&j, "endpoint", cli->endpoint);
    sc_json_key_str(&j, "running");
    sc_json_bool(&j, s != NULL || exit_code == EXIT_NOT_ADMITTED);
    if (s == NULL) {
        json_text(&j, "state",
                  exit_code == EXIT_NOT_ADMITTED ? "not admitted"
                                                 : "not running");
        json_text(&j, "error", error);
    } else {
        const agent_view_t *def = default_agent(s);
        sc_json_key_str(&j, "pid");
        sc_json_uint64(&j, s->pid);
        json_text(&j, "version", s->version);
        json_text(&j, "mode", s->mode);
        sc_json_key_str(&j, "uptime_ms");
        sc_json_uint64(&j, s->uptime_ms);
        sc_json_key_str(&j, "clients");
        sc_json_uint64(&j, s->clients);
        sc_json_key_str(&j, "rss_bytes");
        sc_json_uint64(&j, s->rss);
        json_text(&j, "agent", def->url);
        sc_json_key_str(&j, "agent_reachable");
        sc_json_bool(&j, def->reachable);
        if (def->version[0] != '\0') {
            json_text(&j, "agent_version", def->version);
        }
        for (size_t i = 0; i < DESTINATIONS; i++) {
            const destination_view_t *d = &s->dest[i];
            sc_json_key_str(&j, d->key);
            sc_json_object_begin(&j);
            sc_json_key_str(&j, "delivered");
            sc_json_uint64(&j, d->delivered);
            json_text(&j, "unit", d->unit);
            sc_json_key_str(&j, "buffered_bytes");
            sc_json_uint64(&j, d->buffered_bytes);
            sc_json_key_str(&j, "dropped");
            sc_json_uint64(&j, d->dropped);
            sc_json_key_str(&j, "failed_requests");
            sc_json_uint64(&j, d->failed_requests);
            json_outcome(&j, "last_delivery", &def->dest[i]);
            sc_json_object_end(&j);
        }
        sc_json_key_str(&j, "agents");
        sc_json_array_begin(&j);
        for (size_t a = 0; a < s->agent_count; a++) {
            const agent_view_t *ag = &s->agents[a];
            sc_json_object_begin(&j);
            json_text(&j, "agent", ag->url);
            sc_json_key_str(&j, "default");
            sc_json_bool(&j, ag->is_default);
            sc_json_key_str(&j, "reachable");
            sc_json_bool(&j, ag->reachable);
            if (ag->version[0] != '\0') {
                json_text(&j, "agent_version", ag->version);
            }
            sc_json_key_str(&j, "info");
            sc_json_object_begin(&j);
            json_outcome(&j, "last_answer", &ag->info);
            sc_json_object_end(&j);
            for (size_t i = 0; i < DESTINATIONS; i++) {
                sc_json_key_str(&j, destinations[i].key);
                sc_json_object_begin(&j);
                json_outcome(&j, "last_delivery", &ag->dest[i]);
                sc_json_object_end(&j);
            }
            sc_json_object_end(&j);
        }
        sc_json_array_end(&j);
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

/* Past the value at `p` and the comma after it, if any. */
static const char *next_item(const char *p)
{
    p = skip_value(p);
    if (p == NULL) {
        return NULL;
    }
    p = skip_ws(p);
    return *p == ',' ? skip_ws(p + 1) : p;
}

/* The `index`-th value of the array at `p` (on its '['), or NULL. */
static const char *array_item(const char *p, unsigned long index)
{
    p = skip_ws(p + 1);
    for (unsigned long i = 0; *p != ']' && *p != '\0'; i++) {
        if (i == index) {
            return p;
        }
        p = next_item(p);
        if (p == NULL) {
            return NULL;
        }
    }
    return NULL;
}

const char *cli_json_find(const char *doc, const char *path, size_t *len)
{
    const char *p = skip_ws(doc);
    while (*path != '\0') {
        const char *dot = strchr(path, '.');
        size_t seg = dot != NULL ? (size_t)(dot - path) : strlen(path);
        if (*p == '[' && seg > 0 && strspn(path, "0123456789") == seg) {
            p = array_item(p, strtoul(path, NULL, 10));
            if (p == NULL) {
                return NULL;
            }
            path += seg + (dot != NULL ? 1 : 0);
            continue;
        }
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
            p = next_item(p);
            if (p == NULL) {
                return NULL;
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

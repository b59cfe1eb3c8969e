/* The sidecar PHP extension: module lifecycle and configuration.
 *
 * MINIT makes this process the runtime's master (sc_init); RSHUTDOWN hands
 * the request's flag-evaluation counts and buffered actions to the sidecar
 * without waiting; MSHUTDOWN calls sc_shutdown(), which does master-only
 * teardown only in the master (it also runs in FPM workers and in forked
 * children). docs/php.md describes the settings and the lifecycles. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php_sidecar.h"

#include "SAPI.h"
#include "ext/standard/info.h"
#include "php_ini.h"
#include "sidecar.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

bool php_sidecar_active;

static php_sidecar_counters_t counters;

php_sidecar_counters_t *php_sidecar_counters(void)
{
    uint32_t self = (uint32_t)getpid();
    if (counters.pid != self) {
        memset(&counters, 0, sizeof counters);
        counters.pid = self;
    }
    return &counters;
}

/* ---- INI --------------------------------------------------------------------
 *
 * Everything is read once, in MINIT (PHP_INI_SYSTEM): the runtime is set up
 * before any request and FPM workers inherit it. One mapping names them
 * (docs/settings.md): the environment variable without DD_TRACE_SIDECAR_,
 * DD_TRACE_ or DD_, lowercased, after "sidecar.": DD_TRACE_SIDECAR_LOG_LEVEL
 * is sidecar.log_level, DD_TRACE_AGENT_URL sidecar.agent_url, DD_SERVICE
 * sidecar.service. An empty value means "not set": the environment variable,
 * then the default, applies. Booleans use "env" for "not set", because
 * php.ini's `Off` reads as "". */

PHP_INI_BEGIN()
PHP_INI_ENTRY("sidecar.enabled", "env", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.cli_enabled", "env", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.connection_mode", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.agent_url", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.agent_host", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.agent_port", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.path", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.endpoint_dir", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.connect_timeout", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.idle_timeout", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.rss_cap", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.enqueue_budget_us", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.flagging_evaluation_counts_enabled", "env",
              PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.service", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.env", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.version", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.allowed_uids", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.allowed_sids", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.log_level", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.log_file", "", PHP_INI_SYSTEM, NULL)
/* Names of 0.1.0 before the mapping, still read (the new name wins). */
PHP_INI_ENTRY("sidecar.sidecar_path", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.flag_evaluation_counts", "env", PHP_INI_SYSTEM, NULL)
PHP_INI_END()

/* The INI value when set, otherwise NULL. The string lives until
 * UNREGISTER_INI_ENTRIES in MSHUTDOWN, after sc_shutdown(). */
static const char *ini_set_value(const char *name)
{
    const char *v = INI_STR(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Where each effective value came from, for `php --ri sidecar`. */
typedef struct effective {
    const char *ini;
    const char *env;
    const char *from; /* "INI", "env" or "default" */
} effective_t;

static effective_t effective[] = {
    {"sidecar.enabled", "DD_TRACE_SIDECAR_ENABLED", "default"},
    {"sidecar.cli_enabled", "DD_TRACE_CLI_ENABLED", "default"},
    {"sidecar.connection_mode", "DD_TRACE_SIDECAR_CONNECTION_MODE", "default"},
    {"sidecar.agent_url", "DD_TRACE_AGENT_URL", "default"},
    {"sidecar.path", "DD_TRACE_SIDECAR_PATH", "default"},
    {"sidecar.endpoint_dir", "DD_TRACE_SIDECAR_ENDPOINT_DIR", "default"},
    {"sidecar.connect_timeout", "DD_TRACE_SIDECAR_CONNECT_TIMEOUT", "default"},
    {"sidecar.idle_timeout", "DD_TRACE_SIDECAR_IDLE_TIMEOUT", "default"},
    {"sidecar.rss_cap", "DD_TRACE_SIDECAR_RSS_CAP", "default"},
    {"sidecar.enqueue_budget_us", "DD_TRACE_SIDECAR_ENQUEUE_BUDGET_US",
     "default"},
    {"sidecar.flagging_evaluation_counts_enabled",
     "DD_FLAGGING_EVALUATION_COUNTS_ENABLED", "default"},
    {"sidecar.service", "DD_SERVICE", "default"},
    {"sidecar.env", "DD_ENV", "default"},
    {"sidecar.version", "DD_VERSION", "default"},
    {"sidecar.allowed_uids", "DD_TRACE_SIDECAR_ALLOWED_UIDS", "default"},
    {"sidecar.allowed_sids", "DD_TRACE_SIDECAR_ALLOWED_SIDS", "default"},
    {"sidecar.log_level", "DD_TRACE_SIDECAR_LOG_LEVEL", "default"},
    {"sidecar.log_file", "DD_TRACE_SIDECAR_LOG_FILE", "default"},
};

#define EFFECTIVE_COUNT (sizeof effective / sizeof effective[0])

static effective_t *effective_of(const char *ini)
{
    for (size_t i = 0; i < EFFECTIVE_COUNT; i++) {
        if (strcmp(effective[i].ini, ini) == 0) {
            return &effective[i];
        }
    }
    return NULL;
}

static bool env_set(const char *name)
{
    const char *v = name != NULL ? getenv(name) : NULL;
    return v != NULL && *v != '\0';
}

/* Records where the setting `ini` comes from: its INI value (or that of
 * `alias`) when set, else its environment variable, else the default. */
static const char *resolve(const char *ini, const char *alias)
{
    const char *v = ini_set_value(ini);
    if (v == NULL && alias != NULL) {
        v = ini_set_value(alias);
    }
    effective_t *e = effective_of(ini);
    if (e != NULL) {
        e->from = v != NULL ? "INI" : env_set(e->env) ? "env" : "default";
    }
    return v;
}

static void ini_string(const char *name, const char **out)
{
    const char *v = resolve(name, NULL);
    if (v != NULL) {
        *out = v;
    }
}

/* A non-negative integer INI value up to `max`, or a warning. */
static bool ini_uint(const char *name, uint64_t max, uint64_t *out)
{
    const char *v = resolve(name, NULL);
    if (v == NULL) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || v[0] == '-' || n > max) {
        php_error_docref(NULL, E_WARNING,
                         "ignoring %s=%s: not a non-negative integer", name, v);
        return false;
    }
    *out = n;
    return true;
}

static void ini_u32(const char *name, uint32_t *out)
{
    uint64_t n;
    if (ini_uint(name, UINT32_MAX, &n)) {
        *out = (uint32_t)n;
    }
}

/* A boolean setting: the INI value unless "env" (its default); then the
 * environment variable (true/false, 1/0, yes/no, on/off); then `dflt`.
 * `alias` is an older INI name, read when the new one is "env". */
static bool setting_bool(const char *ini, const char *alias, bool dflt)
{
    effective_t *e = effective_of(ini);
    const char *v = INI_STR(ini);
    if ((v == NULL || strcmp(v, "env") == 0) && alias != NULL) {
        v = INI_STR(alias);
    }
    if (v != NULL && strcmp(v, "env") != 0) {
        e->from = "INI";
        zend_string *value = zend_string_init(v, strlen(v), 0);
        bool b = zend_ini_parse_bool(value);
        zend_string_release(value);
        return b;
    }
    const char *env = getenv(e->env);
    if (env != NULL && *env != '\0') {
        e->from = "env";
        zend_string *value = zend_string_init(env, strlen(env), 0);
        bool b = zend_ini_parse_bool(value);
        zend_string_release(value);
        return b;
    }
    e->from = "default";
    return dflt;
}

/* sidecar.agent_host / sidecar.agent_port (DD_AGENT_HOST /
 * DD_TRACE_AGENT_PORT): when sidecar.agent_url is not set, they make the
 * agent URL the processes hand to the sidecar. Without INI values the
 * sidecar reads the variables itself. */
static void apply_agent_host_port(sc_config_t *cfg)
{
    static char url[512];
    const char *host = ini_set_value("sidecar.agent_host");
    const char *port = ini_set_value("sidecar.agent_port");
    if (cfg->client.agent_url != NULL || (host == NULL && port == NULL)) {
        return;
    }
    if (host == NULL) {
        host = getenv("DD_AGENT_HOST");
    }
    if (port == NULL) {
        port = getenv("DD_TRACE_AGENT_PORT");
    }
    host = host != NULL && *host != '\0' ? host : "localhost";
    port = port != NULL && *port != '\0' ? port : "8126";
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(url, sizeof url, "http://%s%s%s:%s", v6 ? "[" : "", host,
             v6 ? "]" : "", port);
    cfg->client.agent_url = url;
    effective_of("sidecar.agent_url")->from = "INI (agent_host/agent_port)";
}

static void apply_ini(sc_config_t *cfg)
{
    const char *mode = resolve("sidecar.connection_mode", NULL);
    if (mode != NULL && sc_connection_mode_parse(mode, &cfg->mode) != 0) {
        php_error_docref(NULL, E_WARNING,
                         "ignoring sidecar.connection_mode=%s (auto, "
                         "subprocess or thread)",
                         mode);
    }
    const char *path = resolve("sidecar.path", "sidecar.sidecar_path");
    if (path != NULL) {
        cfg->sidecar_path = path;
    }
    ini_string("sidecar.endpoint_dir", &cfg->endpoint_dir);
    ini_u32("sidecar.connect_timeout", &cfg->connect_timeout_ms);
    ini_u32("sidecar.idle_timeout", &cfg->idle_timeout_ms);
    ini_uint("sidecar.rss_cap", UINT64_MAX, &cfg->rss_cap_bytes);
    const char *budget = getenv("DD_TRACE_SIDECAR_ENQUEUE_BUDGET_US");
    if (budget != NULL && *budget != '\0') {
        char *end = NULL;
        unsigned long n = strtoul(budget, &end, 10);
        if (*end == '\0' && budget[0] != '-' && n <= UINT32_MAX) {
            cfg->client.enqueue_budget_us = (uint32_t)n;
        }
    }
    ini_u32("sidecar.enqueue_budget_us", &cfg->client.enqueue_budget_us);
    ini_string("sidecar.agent_url", &cfg->client.agent_url);
    apply_agent_host_port(cfg);
    ini_string("sidecar.service", &cfg->client.service);
    ini_string("sidecar.env", &cfg->client.env);
    ini_string("sidecar.version", &cfg->client.version);
    ini_string("sidecar.allowed_sids", &cfg->allowed_sids);
    /* Left at -1, the runtime reads DD_FLAGGING_EVALUATION_COUNTS_ENABLED
     * itself; an INI boolean overrides it. */
    const char *counts = INI_STR("sidecar.flagging_evaluation_counts_enabled");
    if (counts == NULL || strcmp(counts, "env") == 0) {
        counts = INI_STR("sidecar.flag_evaluation_counts");
    }
    if (counts != NULL && strcmp(counts, "env") != 0) {
        cfg->flag_evaluation_counts =
            setting_bool("sidecar.flagging_evaluation_counts_enabled",
                         "sidecar.flag_evaluation_counts", true)
                ? 1
                : 0;
    } else {
        effective_of("sidecar.flagging_evaluation_counts_enabled")->from =
            env_set("DD_FLAGGING_EVALUATION_COUNTS_ENABLED") ? "env"
                                                             : "default";
    }
}

/* sidecar.allowed_uids = "33,1000": users besides the master's whose
 * processes the sidecar admits (FPM's pool user under a root master in
 * subprocess mode; the pool's user is not known yet at MINIT). */
static void apply_allowed_uids(sc_config_t *cfg)
{
    const char *v = resolve("sidecar.allowed_uids", NULL);
    if (v == NULL) {
        return;
    }
    size_t n = 0;
    const char *p = v;
    while (*p != '\0' &&
           n < sizeof cfg->allowed_uids / sizeof cfg->allowed_uids[0]) {
        char *end = NULL;
        unsigned long uid = strtoul(p, &end, 10);
        if (end == p || uid > UINT32_MAX || (*end != ',' && *end != '\0')) {
            php_error_docref(NULL, E_WARNING,
                             "ignoring sidecar.allowed_uids=%s: "
                             "comma-separated uids",
                             v);
            return;
        }
        cfg->allowed_uids[n++] = (uint32_t)uid;
        p = *end == ',' ? end + 1 : end;
    }
    cfg->allowed_uid_count = n;
}

/* sidecar.log_level / sidecar.log_file: the library's log in this process
 * (warn by default, to stderr); the variables apply without them. */
static void apply_logging(void)
{
    const char *level = resolve("sidecar.log_level", NULL);
    const char *file = resolve("sidecar.log_file", NULL);
    if ((level != NULL || file != NULL) && sc_set_logging(level, file) != 0) {
        php_error_docref(NULL, E_WARNING,
                         "sidecar.log_level=%s / sidecar.log_file=%s: a bad "
                         "level (error, warn, info, debug) or a file that "
                         "cannot be opened",
                         level != NULL ? level : "", file != NULL ? file : "");
    }
}

/* ---- lifecycle --------------------------------------------------------------
 */

/* What MINIT decided, for `php --ri sidecar`. */
static sc_config_t effective_cfg;
static const char *inactive_reason = "";
static bool cli_enabled;

/* The command-line SAPIs (php -v, composer, artisan...) start no sidecar
 * unless asked: sidecar.cli_enabled / DD_TRACE_CLI_ENABLED, as dd-trace-php
 * does for its tracer. The built-in web server (cli-server) serves requests
 * and counts as a server. */
static bool is_cli_sapi(void)
{
    return sapi_module.name != NULL &&
           (strcmp(sapi_module.name, "cli") == 0 ||
            strcmp(sapi_module.name, "phpdbg") == 0);
}

static PHP_MINIT_FUNCTION(sidecar)
{
    (void)type;
    REGISTER_INI_ENTRIES();
    apply_logging();
    cli_enabled = setting_bool("sidecar.cli_enabled", NULL, false);
    if (!setting_bool("sidecar.enabled", NULL, true)) {
        inactive_reason = "disabled (sidecar.enabled / "
                          "DD_TRACE_SIDECAR_ENABLED)";
        return SUCCESS;
    }
    if (is_cli_sapi() && !cli_enabled) {
        inactive_reason = "not started for the command line (enable with "
                          "sidecar.cli_enabled=1 or DD_TRACE_CLI_ENABLED=true)";
        return SUCCESS;
    }
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    if (sc_config_from_env(&cfg) != 0) {
        php_error_docref(NULL, E_WARNING,
                         "a DD_TRACE_SIDECAR_* variable could not be parsed "
                         "and was ignored");
    }
    apply_ini(&cfg);
    /* With daemonize = yes, MINIT runs in a launcher that forks the real
     * FPM master and exits: the listener (thread mode) must end up in the
     * process that forks the workers. */
    cfg.listener_follows_forker =
        sapi_module.name != NULL && strcmp(sapi_module.name, "fpm-fcgi") == 0;
    cfg.client.language = "php";
    cfg.client.language_version = PHP_VERSION;
    apply_allowed_uids(&cfg);
    int rc = sc_init(&cfg);
    if (rc != 0) {
        php_error_docref(NULL, E_WARNING, "sc_init: %s", sc_strerror(rc));
    }
    effective_cfg = cfg;
    /* Already initialized (rc = UV_EALREADY) is as good as done. When there
     * is no runtime, PHP runs on and every call reports false. */
    php_sidecar_active = sc_runtime_client() != NULL;
    if (!php_sidecar_active) {
        inactive_reason = "the runtime did not start (see the log)";
    }
    return SUCCESS;
}

/* ---- telemetry (docs/telemetry.md) ----------------------------------------
 *
 * Each process that serves a request reports app-started once, with the
 * settings that did not come from their defaults, and app-closing when it
 * ends; the sidecar makes one app-started per application of them all. */

static void send_app_started(void)
{
    sc_telemetry_config_t config[EFFECTIVE_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < EFFECTIVE_COUNT; i++) {
        const effective_t *e = &effective[i];
        bool from_ini = strcmp(e->from, "INI") == 0;
        const char *value =
            from_ini ? ini_set_value(e->ini) : getenv(e->env);
        if (strcmp(e->from, "default") == 0 || value == NULL) {
            continue;
        }
        config[n++] = (sc_telemetry_config_t){
            .name = from_ini ? e->ini : e->env,
            .value = value,
            .origin = from_ini ? "app.config" : "env_var"};
    }
    sc_telemetry_t ev = {.event = SC_TELEMETRY_APP_STARTED,
                         .configuration = config,
                         .configuration_len = n};
    php_sidecar_counters()->app_started = sc_send_telemetry(&ev) == 0;
}

static void send_app_closing(void)
{
    php_sidecar_counters_t *c = php_sidecar_counters();
    if (c->app_started) {
        sc_telemetry_t ev = {.event = SC_TELEMETRY_APP_CLOSING};
        sc_send_telemetry(&ev);
        c->app_started = false;
    }
}

static PHP_MSHUTDOWN_FUNCTION(sidecar)
{
    (void)type;
    (void)module_number;
    if (php_sidecar_active) {
        send_app_closing();
        /* In the master: final flush and listener stop. In a worker or a
         * forked child: only a non-blocking write of its own buffer (the
         * runtime checks which process this is). */
        sc_shutdown();
    }
    UNREGISTER_INI_ENTRIES();
    return SUCCESS;
}

static PHP_RINIT_FUNCTION(sidecar)
{
    (void)type;
    (void)module_number;
#if defined(ZTS) && defined(COMPILE_DL_SIDECAR)
    ZEND_TSRMLS_CACHE_UPDATE();
#endif
    php_sidecar_counters_t *c = php_sidecar_counters();
    if (c->requests++ == 0 && php_sidecar_active) {
        send_app_started(); /* this process's first request */
    }
    return SUCCESS;
}

typedef struct moment {
    uint64_t ns;
    long voluntary, involuntary; /* context switches of this thread */
} moment_t;

static moment_t now(void)
{
    moment_t m = {0, 0, 0};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m.ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#ifdef RUSAGE_THREAD
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        m.voluntary = ru.ru_nvcsw;
        m.involuntary = ru.ru_nivcsw;
    }
#endif
    return m;
}

/* Request end: hand over what the request produced, within the client's
 * enqueue budget. What does not fit stays buffered for the next request
 * (or MSHUTDOWN); nothing here waits for the sidecar. */
static PHP_RSHUTDOWN_FUNCTION(sidecar)
{
    (void)type;
    (void)module_number;
    if (!php_sidecar_active) {
        return SUCCESS;
    }
    moment_t t0 = now();
    sc_flag_evaluations_flush();
    sc_flush();
    moment_t t1 = now();
    uint64_t ns = t1.ns - t0.ns;
    bool preempted = t1.involuntary != t0.involuntary;
    php_sidecar_counters_t *c = php_sidecar_counters();
    c->rshutdown_ns_last = ns;
    if (ns > c->rshutdown_ns_max) {
        c->rshutdown_ns_max = ns;
    }
    if (!preempted && ns > c->rshutdown_ns_max_unpreempted) {
        c->rshutdown_ns_max_unpreempted = ns;
    }
    c->rshutdown_blocked += t1.voluntary != t0.voluntary;
    c->rshutdown_preempted += preempted;
    return SUCCESS;
}

static void row(const char *name, const char *value, const char *from)
{
    char shown[600];
    snprintf(shown, sizeof shown, "%s (%s)", value, from);
    php_info_print_table_row(2, name, shown);
}

static const char *from_of(const char *ini)
{
    return effective_of(ini)->from;
}

static const char *or_none(const char *s, const char *none)
{
    return s != NULL && *s != '\0' ? s : none;
}

/* `php --ri sidecar`: the values in effect and where each came from, then
 * the raw INI entries. */
static void print_effective(void)
{
    const sc_config_t *c = &effective_cfg;
    char buf[512];
    row("connection mode (configured)", sc_connection_mode_name(c->mode),
        from_of("sidecar.connection_mode"));
    row("sidecar binary", or_none(c->sidecar_path, "?"),
        from_of("sidecar.path"));
    row("endpoint directory",
        or_none(c->endpoint_dir, "none: abstract sockets"),
        from_of("sidecar.endpoint_dir"));
    row("agent",
        or_none(c->client.agent_url, "the sidecar's own: "
                                     "DD_TRACE_AGENT_URL / "
                                     "DD_AGENT_HOST:DD_TRACE_AGENT_PORT"
                                     ", else http://localhost:8126"),
        from_of("sidecar.agent_url"));
    snprintf(buf, sizeof buf, "%u ms", (unsigned)c->connect_timeout_ms);
    row("connect timeout", buf, from_of("sidecar.connect_timeout"));
    snprintf(buf, sizeof buf, "%u ms", (unsigned)c->idle_timeout_ms);
    row("idle timeout", buf, from_of("sidecar.idle_timeout"));
    if (c->rss_cap_bytes == 0) {
        snprintf(buf, sizeof buf, "none");
    } else {
        snprintf(buf, sizeof buf, "%llu bytes (%.1f MiB)",
                 (unsigned long long)c->rss_cap_bytes,
                 (double)c->rss_cap_bytes / (1024.0 * 1024.0));
    }
    row("sidecar memory cap", buf, from_of("sidecar.rss_cap"));
    snprintf(buf, sizeof buf, "%u us",
             (unsigned)(c->client.enqueue_budget_us != 0
                            ? c->client.enqueue_budget_us
                            : 200));
    row("enqueue budget", buf, from_of("sidecar.enqueue_budget_us"));
    row("flag evaluation counts",
        c->flag_evaluation_counts == 0   ? "off"
        : c->flag_evaluation_counts == 1 ? "on"
                                         : "the variable decides (default on)",
        from_of("sidecar.flagging_evaluation_counts_enabled"));
    row("service", or_none(c->client.service, "absent"),
        from_of("sidecar.service"));
    row("env", or_none(c->client.env, "absent"), from_of("sidecar.env"));
    row("version", or_none(c->client.version, "absent"),
        from_of("sidecar.version"));
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->allowed_uid_count && len + 12 < sizeof buf; i++) {
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%u",
                                i > 0 ? "," : "", (unsigned)c->allowed_uids[i]);
    }
    row("allowed uids", or_none(buf, "none"), from_of("sidecar.allowed_uids"));
    row("allowed SIDs", or_none(c->allowed_sids, "none"),
        from_of("sidecar.allowed_sids"));
}

static PHP_MINFO_FUNCTION(sidecar)
{
    (void)zend_module;
    php_info_print_table_start();
    php_info_print_table_row(2, "sidecar support",
                             php_sidecar_active ? "enabled" : inactive_reason);
    php_info_print_table_row(2, "extension version", PHP_SIDECAR_VERSION);
    php_info_print_table_row(2, "library version", sc_version());
    const char *level = NULL, *file = NULL;
    sc_get_logging(&level, &file);
    row("log level", level, from_of("sidecar.log_level"));
    row("log file", or_none(file, "stderr"), from_of("sidecar.log_file"));
    row("on the command line",
        cli_enabled ? "starts a sidecar" : "starts nothing",
        from_of("sidecar.cli_enabled"));
    if (php_sidecar_active) {
        sc_runtime_info_t info;
        sc_runtime_info(&info);
        php_info_print_table_row(2, "connection mode",
                                 sc_connection_mode_name(info.mode));
        php_info_print_table_row(2, "reason", info.reason);
        php_info_print_table_row(2, "endpoint", info.endpoint);
        print_effective();
    }
    php_info_print_table_end();
    DISPLAY_INI_ENTRIES();
}

zend_module_entry sidecar_module_entry = {
    STANDARD_MODULE_HEADER,     PHP_SIDECAR_EXTNAME,    php_sidecar_functions,
    PHP_MINIT(sidecar),         PHP_MSHUTDOWN(sidecar), PHP_RINIT(sidecar),
    PHP_RSHUTDOWN(sidecar),     PHP_MINFO(sidecar),     PHP_SIDECAR_VERSION,
    STANDARD_MODULE_PROPERTIES,
};

#ifdef COMPILE_DL_SIDECAR
#ifdef ZTS
ZEND_TSRMLS_CACHE_DEFINE()
#endif
ZEND_GET_MODULE(sidecar)
#endif

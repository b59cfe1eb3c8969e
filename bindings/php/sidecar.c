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
 * before any request and FPM workers inherit it. An empty value means "not
 * set": the DD_* environment variable, then the runtime's default, applies.
 */

PHP_INI_BEGIN()
PHP_INI_ENTRY("sidecar.enabled", "1", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.connection_mode", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.agent_url", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.sidecar_path", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.endpoint_dir", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.connect_timeout", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.idle_timeout", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.enqueue_budget_us", "", PHP_INI_SYSTEM, NULL)
/* "env": DD_FLAGGING_EVALUATION_COUNTS_ENABLED decides (default on). Any
 * other value is a PHP boolean; php.ini's `Off` reads as "", hence "env"
 * rather than "" as the "not set" value. */
PHP_INI_ENTRY("sidecar.flag_evaluation_counts", "env", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.service", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.env", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.version", "", PHP_INI_SYSTEM, NULL)
PHP_INI_ENTRY("sidecar.allowed_uids", "", PHP_INI_SYSTEM, NULL)
PHP_INI_END()

/* The INI value when set, otherwise NULL. The string lives until
 * UNREGISTER_INI_ENTRIES in MSHUTDOWN, after sc_shutdown(). */
static const char *ini_set_value(const char *name)
{
    const char *v = INI_STR(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static void ini_string(const char *name, const char **out)
{
    const char *v = ini_set_value(name);
    if (v != NULL) {
        *out = v;
    }
}

static void ini_u32(const char *name, uint32_t *out)
{
    const char *v = ini_set_value(name);
    if (v == NULL) {
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno != 0 || *end != '\0' || v[0] == '-' || n > UINT32_MAX) {
        php_error_docref(NULL, E_WARNING,
                         "ignoring %s=%s: not a non-negative integer", name, v);
        return;
    }
    *out = (uint32_t)n;
}

static void apply_ini(sc_config_t *cfg)
{
    const char *mode = ini_set_value("sidecar.connection_mode");
    if (mode != NULL && sc_connection_mode_parse(mode, &cfg->mode) != 0) {
        php_error_docref(NULL, E_WARNING,
                         "ignoring sidecar.connection_mode=%s (auto, "
                         "subprocess or thread)",
                         mode);
    }
    ini_string("sidecar.sidecar_path", &cfg->sidecar_path);
    ini_string("sidecar.endpoint_dir", &cfg->endpoint_dir);
    ini_u32("sidecar.connect_timeout", &cfg->connect_timeout_ms);
    ini_u32("sidecar.idle_timeout", &cfg->idle_timeout_ms);
    ini_u32("sidecar.enqueue_budget_us", &cfg->client.enqueue_budget_us);
    ini_string("sidecar.agent_url", &cfg->client.agent_url);
    ini_string("sidecar.service", &cfg->client.service);
    ini_string("sidecar.env", &cfg->client.env);
    ini_string("sidecar.version", &cfg->client.version);
}

/* sidecar.flag_evaluation_counts: "env" (default) keeps
 * DD_FLAGGING_EVALUATION_COUNTS_ENABLED; any boolean overrides it. */
static void apply_flag_evaluation_counts(sc_config_t *cfg)
{
    const char *ini = INI_STR("sidecar.flag_evaluation_counts");
    if (ini == NULL || strcmp(ini, "env") == 0) {
        return;
    }
    zend_string *value = zend_string_init(ini, strlen(ini), 0);
    cfg->flag_evaluation_counts = zend_ini_parse_bool(value) ? 1 : 0;
    zend_string_release(value);
}

/* sidecar.allowed_uids = "33,1000": users besides the master's whose
 * processes the sidecar admits (FPM's pool user under a root master in
 * subprocess mode; the pool's user is not known yet at MINIT). */
static void apply_allowed_uids(sc_config_t *cfg)
{
    const char *v = ini_set_value("sidecar.allowed_uids");
    if (v == NULL) {
        return;
    }
    size_t n = 0;
    const char *p = v;
    while (*p != '\0' && n < sizeof cfg->allowed_uids / sizeof cfg->allowed_uids[0]) {
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

/* ---- lifecycle --------------------------------------------------------------
 */

static PHP_MINIT_FUNCTION(sidecar)
{
    (void)type;
    REGISTER_INI_ENTRIES();
    if (!INI_BOOL("sidecar.enabled")) {
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
    apply_flag_evaluation_counts(&cfg);
    apply_allowed_uids(&cfg);
    int rc = sc_init(&cfg);
    if (rc != 0) {
        php_error_docref(NULL, E_WARNING, "sc_init: %s", sc_strerror(rc));
    }
    /* Already initialized (rc = UV_EALREADY) is as good as done. When there
     * is no runtime, PHP runs on and every call reports false. */
    php_sidecar_active = sc_runtime_client() != NULL;
    return SUCCESS;
}

static PHP_MSHUTDOWN_FUNCTION(sidecar)
{
    (void)type;
    (void)module_number;
    if (php_sidecar_active) {
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
    php_sidecar_counters()->requests++;
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

static PHP_MINFO_FUNCTION(sidecar)
{
    (void)zend_module;
    php_info_print_table_start();
    php_info_print_table_row(2, "sidecar support",
                             php_sidecar_active ? "enabled" : "disabled");
    php_info_print_table_row(2, "extension version", PHP_SIDECAR_VERSION);
    php_info_print_table_row(2, "library version", sc_version());
    if (php_sidecar_active) {
        sc_runtime_info_t info;
        sc_runtime_info(&info);
        php_info_print_table_row(2, "connection mode",
                                 sc_connection_mode_name(info.mode));
        php_info_print_table_row(2, "reason", info.reason);
        php_info_print_table_row(2, "endpoint", info.endpoint);
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

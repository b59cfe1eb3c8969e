/* Telemetry v2 bodies (docs/telemetry.md, "Bodies"): the envelope every
 * request carries (api_version, request_type, tracer_time, runtime_id,
 * seq_id, application, host) around its payload; and the string rules of
 * the Telemetry action. */
#include "json.h"
#include "telemetry.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

static bool string_ok(sc_view_t v, size_t max, bool required, bool text)
{
    if (v.ptr == NULL || v.len == 0) {
        return !required;
    }
    if (v.len > max || !sc_utf8_valid(v.ptr, v.len)) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        uint8_t c = v.ptr[i];
        bool layout = c == '\n' || c == '\r' || c == '\t';
        if ((c < 0x20 && !(text && layout)) || c == 0x7f) {
            return false;
        }
    }
    return true;
}

bool sc_telemetry_string_ok(sc_view_t v, size_t max, bool required)
{
    return string_ok(v, max, required, false);
}

bool sc_telemetry_text_ok(sc_view_t v, size_t max, bool required)
{
    return string_ok(v, max, required, true);
}

bool sc_telemetry_origin_ok(sc_view_t origin)
{
    static const char *const known[] = {
        "env_var",    "code",    "dd_config", "remote_config",
        "app.config", "default", "unknown"};
    if (origin.ptr == NULL || origin.len == 0) {
        return true;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strlen(known[i]) == origin.len &&
            memcmp(known[i], origin.ptr, origin.len) == 0) {
            return true;
        }
    }
    return false;
}

void sc_telemetry_host_detect(sc_telemetry_host_t *h)
{
    memset(h, 0, sizeof *h);
    size_t len = sizeof h->hostname;
    if (uv_os_gethostname(h->hostname, &len) != 0) {
        snprintf(h->hostname, sizeof h->hostname, "unknown");
    }
    uv_utsname_t u;
    if (uv_os_uname(&u) != 0) {
        memset(&u, 0, sizeof u);
    }
    snprintf(h->os, sizeof h->os, "%s", u.sysname);
    snprintf(h->os_version, sizeof h->os_version, "%s", u.release);
    snprintf(h->architecture, sizeof h->architecture, "%s", u.machine);
    snprintf(h->kernel_name, sizeof h->kernel_name, "%s", u.sysname);
    snprintf(h->kernel_release, sizeof h->kernel_release, "%s", u.release);
    snprintf(h->kernel_version, sizeof h->kernel_version, "%s", u.version);
}

static void member(sc_json_t *j, const char *key, const char *value)
{
    sc_json_key_str(j, key);
    sc_json_string(j, value, strlen(value));
}

bool sc_telemetry_body(sc_buf_t *out, const sc_telemetry_app_info_t *app,
                       const sc_telemetry_host_t *host,
                       const char *request_type, uint64_t seq_id,
                       int64_t tracer_time_s, const char *payload,
                       size_t payload_len)
{
    sc_json_t j;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    member(&j, "api_version", "v2");
    member(&j, "request_type", request_type);
    sc_json_key_str(&j, "tracer_time");
    sc_json_int64(&j, tracer_time_s);
    member(&j, "runtime_id", app->runtime_id);
    sc_json_key_str(&j, "seq_id");
    sc_json_uint64(&j, seq_id);

    sc_json_key_str(&j, "application");
    sc_json_object_begin(&j);
    member(&j, "service_name", app->service);
    member(&j, "env", app->env);
    member(&j, "service_version", app->version);
    member(&j, "tracer_version", app->tracer_version);
    member(&j, "language_name", app->language);
    member(&j, "language_version", app->language_version);
    member(&j, "runtime_name", app->language);
    member(&j, "runtime_version", app->language_version);
    sc_json_object_end(&j);

    sc_json_key_str(&j, "host");
    sc_json_object_begin(&j);
    member(&j, "hostname", host->hostname);
    member(&j, "os", host->os);
    member(&j, "os_version", host->os_version);
    member(&j, "architecture", host->architecture);
    member(&j, "kernel_name", host->kernel_name);
    member(&j, "kernel_release", host->kernel_release);
    member(&j, "kernel_version", host->kernel_version);
    sc_json_object_end(&j);

    sc_json_key_str(&j, "payload");
    if (payload != NULL) {
        sc_json_raw(&j, payload, payload_len);
    } else {
        sc_json_object_begin(&j);
        sc_json_object_end(&j);
    }
    sc_json_object_end(&j);
    return sc_json_ok(&j);
}

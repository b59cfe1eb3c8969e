#include "agent_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static bool has_prefix_nocase(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != *prefix) {
            return false;
        }
    }
    return true;
}

/* Parses a decimal port 1..65535 made of `len` digits at `s`. */
static bool parse_port(const char *s, size_t len, unsigned *port)
{
    if (len == 0 || len > 5) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return false;
    }
    *port = v;
    return true;
}

/* Characters that may appear in a host name or IP literal. Anything else
 * (spaces, '@', '/', control bytes...) would change what the URL means. */
static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == ':' || c == '%';
}

/* Checks "host[:port]" or "[v6][:port]" (the authority of an http URL). */
static bool authority_ok(const char *a, size_t len)
{
    size_t host_end = len;
    const char *port = NULL;
    size_t host_start = 0;
    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL || close == a + 1) {
            return false;
        }
        host_start = 1;
        host_end = (size_t)(close - a);
        size_t after = host_end + 1;
        if (after < len) {
            if (a[after] != ':') {
                return false;
            }
            port = a + after + 1;
        }
    } else {
        const char *colon = memchr(a, ':', len);
        if (colon != NULL) {
            host_end = (size_t)(colon - a);
            port = colon + 1;
        }
    }
    if (host_end == host_start) {
        return false;
    }
    for (size_t i = host_start; i < host_end; i++) {
        if (!host_char_ok(a[i]) || (a[0] != '[' && a[i] == ':')) {
            return false;
        }
    }
    unsigned ignored;
    return port == NULL || parse_port(port, (size_t)(a + len - port), &ignored);
}

static int parse_http(const char *url, sc_agent_addr_t *out)
{
    const char *authority = url + strlen("http://");
    size_t total = strlen(url);
    if (strpbrk(url, "?#@ \t\r\n") != NULL) {
        return UV_EINVAL;
    }
    size_t auth_len = strcspn(authority, "/");
    if (!authority_ok(authority, auth_len)) {
        return UV_EINVAL;
    }
    /* Keep any path prefix, without trailing slashes. */
    while (total > 0 && url[total - 1] == '/') {
        total--;
    }
    if (total >= sizeof out->url) {
        return UV_ENAMETOOLONG;
    }
    memcpy(out->url, "http://", 7);
    memcpy(out->url + 7, authority, total - 7);
    out->url[total] = '\0';
    out->unix_path[0] = '\0';
    return 0;
}

static int parse_unix(const char *url, sc_agent_addr_t *out)
{
    const char *path = url + strlen("unix://");
    size_t len = strlen(path);
    if (len == 0) {
        return UV_EINVAL;
    }
    if (len >= sizeof out->unix_path) {
        return UV_ENAMETOOLONG;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)path[i] < 0x20) {
            return UV_EINVAL;
        }
    }
    memcpy(out->unix_path, path, len + 1);
    snprintf(out->url, sizeof out->url, "http://localhost");
    return 0;
}

int sc_agent_addr_parse_url(const char *url, sc_agent_addr_t *out)
{
    sc_agent_addr_t tmp;
    int rc;
    if (has_prefix_nocase(url, "http://")) {
        rc = parse_http(url, &tmp);
    } else if (has_prefix_nocase(url, "unix://")) {
        rc = parse_unix(url, &tmp);
    } else {
        rc = UV_EINVAL;
    }
    if (rc == 0) {
        *out = tmp;
    }
    return rc;
}

int sc_agent_addr_resolve(const char *trace_agent_url, const char *agent_host,
                          const char *agent_port, sc_agent_addr_t *out)
{
    int rc = 0;
    if (trace_agent_url != NULL && trace_agent_url[0] != '\0') {
        if (sc_agent_addr_parse_url(trace_agent_url, out) == 0) {
            return 0;
        }
        rc = UV_EINVAL;
    }
    unsigned port = SC_AGENT_DEFAULT_PORT;
    if (agent_port != NULL && agent_port[0] != '\0' &&
        !parse_port(agent_port, strlen(agent_port), &port)) {
        rc = UV_EINVAL;
    }
    const char *host = SC_AGENT_DEFAULT_HOST;
    if (agent_host != NULL && agent_host[0] != '\0') {
        size_t n = strlen(agent_host);
        bool ok = n < 256;
        for (size_t i = 0; ok && i < n; i++) {
            ok = host_char_ok(agent_host[i]);
        }
        if (ok) {
            host = agent_host;
        } else {
            rc = UV_EINVAL;
        }
    }
    /* An IPv6 literal needs brackets in a URL. */
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out->url, sizeof out->url, "http://%s%s%s:%u", v6 ? "[" : "", host,
             v6 ? "]" : "", port);
    out->unix_path[0] = '\0';
    return rc;
}

/* uv_os_getenv rather than getenv(): on Windows the C runtime keeps its own
 * copy of the environment, which uv_os_setenv (SetEnvironmentVariable) does
 * not update. A value too long for any valid setting reads as "\x01", which
 * every parser rejects (so it is reported, not silently ignored). */
static const char *env_value(const char *name, char *buf, size_t size)
{
    size_t len = size;
    int rc = uv_os_getenv(name, buf, &len);
    if (rc == UV_ENOBUFS) {
        return "\x01";
    }
    return rc == 0 ? buf : NULL;
}

int sc_agent_addr_from_env(sc_agent_addr_t *out)
{
    char url[2 * SC_AGENT_URL_MAX], host[512], port[32];
    return sc_agent_addr_resolve(
        env_value("DD_TRACE_AGENT_URL", url, sizeof url),
        env_value("DD_AGENT_HOST", host, sizeof host),
        env_value("DD_TRACE_AGENT_PORT", port, sizeof port), out);
}

const char *sc_agent_addr_describe(const sc_agent_addr_t *addr, char *buf,
                                   unsigned size)
{
    if (addr->unix_path[0] != '\0') {
        snprintf(buf, size, "unix://%s", addr->unix_path);
    } else {
        snprintf(buf, size, "%s", addr->url);
    }
    return buf;
}

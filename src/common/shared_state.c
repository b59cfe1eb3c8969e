#include "shared_state.h"

#include "log.h"
#include "platform.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC         0x48534353u /* "SCSH" */
#define LAYOUT        1u
#define READ_ATTEMPTS 10000

void sc_shared_write(sc_shared_segment_t *seg, const sc_shared_record_t *rec)
{
    uint64_t words[SC_SHARED_WORDS] = {0};
    memcpy(words, rec, sizeof *rec);
    uint64_t seq = atomic_load_explicit(&seg->seq, memory_order_relaxed);
    atomic_store_explicit(&seg->seq, seq + 1, memory_order_relaxed);
    /* Readers that see the new words also see the odd counter. */
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < SC_SHARED_WORDS; i++) {
        atomic_store_explicit(&seg->words[i], words[i], memory_order_relaxed);
    }
    atomic_store_explicit(&seg->seq, seq + 2, memory_order_release);
}

int sc_shared_read_segment(const sc_shared_segment_t *seg,
                           sc_shared_record_t *out)
{
    if (seg->magic != MAGIC || seg->layout != LAYOUT) {
        return UV_EINVAL;
    }
    static _Thread_local uint64_t words[SC_SHARED_WORDS];
    for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        uint64_t before = atomic_load_explicit(&seg->seq, memory_order_acquire);
        if (before & 1) {
            continue; /* a write is in progress */
        }
        for (size_t i = 0; i < SC_SHARED_WORDS; i++) {
            words[i] =
                atomic_load_explicit(&seg->words[i], memory_order_relaxed);
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&seg->seq, memory_order_relaxed) == before) {
            memcpy(out, words, sizeof *out);
            out->info[SC_SHARED_INFO_MAX - 1] = '\0';
            out->rates[SC_SHARED_RATES_MAX - 1] = '\0';
            /* Another process wrote it: readers copy these many bytes. */
            if (out->info_len >= SC_SHARED_INFO_MAX ||
                out->rates_len >= SC_SHARED_RATES_MAX) {
                return UV_EINVAL;
            }
            return 0;
        }
    }
    return UV_EAGAIN;
}

void sc_shared_name(const char *endpoint, char *out, size_t size)
{
    /* FNV-1a of the whole endpoint: filesystem endpoints in different
     * directories must not share a segment. */
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 offset basis */
    for (const char *p = endpoint; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    }
    snprintf(out, size, "sidecar-%s-%016llx", SIDECAR_VERSION,
             (unsigned long long)h);
}

struct sc_shared_writer {
    sc_plat_shm_t *shm;
    sc_shared_segment_t *seg;
    sc_shared_record_t rec;
    uint32_t given_to;
};

static void publish(sc_shared_writer_t *w)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    w->rec.updated_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    sc_shared_write(w->seg, &w->rec);
}

int sc_shared_writer_open(const char *endpoint, uint32_t pid,
                          sc_shared_writer_t **out)
{
    sc_shared_writer_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    char name[128];
    sc_shared_name(endpoint, name, sizeof name);
    int rc = sc_plat_shm_create(name, sizeof(sc_shared_segment_t), &w->shm);
    if (rc != 0) {
        free(w);
        return rc;
    }
    w->seg = sc_plat_shm_addr(w->shm);
    w->seg->magic = MAGIC;
    w->seg->layout = LAYOUT;
    w->rec.pid = pid;
    w->rec.flags = SC_SHARED_HEALTHY;
    publish(w);
    *out = w;
    return 0;
}

static void set_doc(char *dst, size_t cap, uint32_t *len, uint32_t *flags,
                    uint32_t truncated_flag, const char *json, size_t n)
{
    if (n >= cap) {
        *flags |= truncated_flag;
        return; /* a cut JSON document would be worse than the old one */
    }
    *flags &= ~truncated_flag;
    memcpy(dst, json, n);
    dst[n] = '\0';
    *len = (uint32_t)n;
}

void sc_shared_publish_info(sc_shared_writer_t *w, const char *json, size_t len)
{
    set_doc(w->rec.info, sizeof w->rec.info, &w->rec.info_len, &w->rec.flags,
            SC_SHARED_INFO_TRUNCATED, json, len);
    if ((w->rec.flags & SC_SHARED_INFO_TRUNCATED) == 0) {
        w->rec.flags |= SC_SHARED_INFO_VALID;
    }
    publish(w);
}

void sc_shared_publish_rates(sc_shared_writer_t *w, const char *json,
                             size_t len)
{
    set_doc(w->rec.rates, sizeof w->rec.rates, &w->rec.rates_len, &w->rec.flags,
            SC_SHARED_RATES_TRUNCATED, json, len);
    publish(w);
}

void sc_shared_give_to(sc_shared_writer_t *w, uint32_t uid)
{
    if (w->given_to != 0 || uid == 0) {
        return;
    }
    int rc = sc_plat_shm_give_to(w->shm, uid);
    if (rc == 0) {
        w->given_to = uid;
    } else {
        SC_LOG_LIMITED(SC_LOG_WARN, "cannot hand shared state to uid %u: %s",
                       uid, uv_strerror(rc));
    }
}

uint32_t sc_shared_given_to(const sc_shared_writer_t *w)
{
    return w->given_to;
}

void sc_shared_writer_close(sc_shared_writer_t *w)
{
    if (w == NULL) {
        return;
    }
    w->rec.flags &= ~SC_SHARED_HEALTHY;
    publish(w);
    sc_plat_shm_close(w->shm, true);
    free(w);
}

int sc_shared_read(const char *endpoint, sc_shared_record_t *out)
{
    char name[128];
    sc_shared_name(endpoint, name, sizeof name);
    sc_plat_shm_t *shm = NULL;
    int rc = sc_plat_shm_open_readonly(name, &shm);
    if (rc != 0) {
        return rc;
    }
    rc = sc_plat_shm_size(shm) >= sizeof(sc_shared_segment_t)
             ? sc_shared_read_segment(sc_plat_shm_addr(shm), out)
             : UV_EINVAL;
    sc_plat_shm_close(shm, false);
    return rc;
}

void sc_shared_key(const char *endpoint, const sc_agent_addr_t *agent,
                   char *out, size_t size)
{
    if (agent == NULL) {
        snprintf(out, size, "%s", endpoint);
        return;
    }
    char desc[SC_AGENT_URL_MAX + 8];
    /* A space never occurs in an endpoint name nor in an agent URL. */
    snprintf(out, size, "%s %s", endpoint,
             sc_agent_addr_describe(agent, desc, sizeof desc));
}

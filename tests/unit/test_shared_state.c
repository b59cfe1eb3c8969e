/* The shared-state seqlock: a reader never sees a torn record while a
 * writer keeps publishing, and the file fallback works when POSIX shared
 * memory is not to be used. */
#include "shared_state.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <cmocka.h>

#define WRITES 20000

typedef struct shared_test {
    sc_shared_segment_t *seg;
    _Atomic int done;
    uint64_t reads, torn, busy;
} shared_test_t;

/* Record number i: every byte of both documents is the same letter, the
 * lengths and the pid derive from i. Any mix of two writes shows. */
static void make_record(sc_shared_record_t *r, uint32_t i)
{
    char c = (char)('a' + i % 26);
    r->pid = i;
    r->flags = SC_SHARED_HEALTHY | SC_SHARED_INFO_VALID;
    r->updated_ms = i;
    r->info_len = 100 + (i * 7919) % 30000;
    r->rates_len = 50 + (i * 104729) % 20000;
    memset(r->info, c, r->info_len);
    r->info[r->info_len] = '\0';
    memset(r->rates, c, r->rates_len);
    r->rates[r->rates_len] = '\0';
}

static bool consistent(const sc_shared_record_t *r)
{
    if (r->pid == 0 && r->info_len == 0) {
        return true; /* before the first write */
    }
    char c = (char)('a' + r->pid % 26);
    if (r->info_len != 100 + (r->pid * 7919) % 30000 ||
        r->rates_len != 50 + (r->pid * 104729) % 20000 ||
        r->updated_ms != r->pid) {
        return false;
    }
    for (uint32_t k = 0; k < r->info_len; k++) {
        if (r->info[k] != c) {
            return false;
        }
    }
    for (uint32_t k = 0; k < r->rates_len; k++) {
        if (r->rates[k] != c) {
            return false;
        }
    }
    return true;
}

static void writer(void *arg)
{
    shared_test_t *t = arg;
    sc_shared_record_t *r = calloc(1, sizeof *r);
    for (uint32_t i = 1; i <= WRITES; i++) {
        make_record(r, i);
        sc_shared_write(t->seg, r);
    }
    free(r);
    atomic_store(&t->done, 1);
}

static void reader(void *arg)
{
    shared_test_t *t = arg;
    sc_shared_record_t *r = malloc(sizeof *r);
    while (!atomic_load(&t->done)) {
        int rc = sc_shared_read_segment(t->seg, r);
        if (rc == UV_EAGAIN) {
            t->busy++;
            continue;
        }
        assert_int_equal(rc, 0);
        t->reads++;
        t->torn += !consistent(r);
    }
    free(r);
}

static void reader_never_sees_a_torn_record(void **state)
{
    (void)state;
    sc_shared_segment_t *seg = calloc(1, sizeof *seg);
    seg->magic = 0x48534353u;
    seg->layout = 1;
    shared_test_t t = {.seg = seg};
    uv_thread_t w, r;
    uv_thread_create(&r, reader, &t);
    uv_thread_create(&w, writer, &t);
    uv_thread_join(&w);
    uv_thread_join(&r);
    printf("%d writes, %llu consistent reads, %llu torn, %llu busy\n", WRITES,
           (unsigned long long)t.reads, (unsigned long long)t.torn,
           (unsigned long long)t.busy);
    assert_true(t.reads > 0);
    assert_int_equal(t.torn, 0);
    free(seg);
}

static void write_read_through_a_named_segment(const char *endpoint)
{
    sc_shared_writer_t *w = NULL;
    assert_int_equal(sc_shared_writer_open(endpoint, 4242, &w), 0);
    const char info[] = "{\"endpoints\":[\"/v0.4/traces\"]}";
    sc_shared_publish_info(w, info, sizeof info - 1);
    sc_shared_publish_rates(w, "{\"service:,env:\":0.5}", 21);
    sc_shared_record_t *r = malloc(sizeof *r);
    assert_int_equal(sc_shared_read(endpoint, r), 0);
    assert_int_equal(r->pid, 4242);
    assert_true(r->flags & SC_SHARED_HEALTHY);
    assert_true(r->flags & SC_SHARED_INFO_VALID);
    assert_string_equal(r->info, info);
    assert_string_equal(r->rates, "{\"service:,env:\":0.5}");
    /* A document too large is not published cut: the old one stays. */
    char *big = malloc(SC_SHARED_INFO_MAX + 10);
    memset(big, 'x', SC_SHARED_INFO_MAX + 10);
    sc_shared_publish_info(w, big, SC_SHARED_INFO_MAX + 10);
    assert_int_equal(sc_shared_read(endpoint, r), 0);
    assert_true(r->flags & SC_SHARED_INFO_TRUNCATED);
    assert_string_equal(r->info, info);
    free(big);
    sc_shared_writer_close(w);
    /* Closed: the name is gone. */
    assert_int_equal(sc_shared_read(endpoint, r), UV_ENOENT);
    free(r);
}

static void named_segment(void **state)
{
    (void)state;
    write_read_through_a_named_segment("@sidecar-test-shm-posix");
}

/* Each agent has its own segment: two agents of one endpoint publish side
 * by side, each read back under its own key (docs/shared-state.md). */
static void one_segment_per_agent(void **state)
{
    (void)state;
    const char *ep = "@sidecar-test-shm-agents";
    sc_agent_addr_t a, b;
    assert_int_equal(sc_agent_addr_parse_url("http://127.0.0.1:8126", &a), 0);
    assert_int_equal(sc_agent_addr_parse_url("unix:///run/apm.sock", &b), 0);
    char keys[3][SC_AGENT_URL_MAX + 300];
    sc_shared_key(ep, NULL, keys[0], sizeof keys[0]);
    sc_shared_key(ep, &a, keys[1], sizeof keys[1]);
    sc_shared_key(ep, &b, keys[2], sizeof keys[2]);
    assert_string_equal(keys[0], ep); /* the default agent: the old name */
    assert_string_equal(keys[1],
                        "@sidecar-test-shm-agents http://127.0.0.1:8126");
    assert_string_equal(keys[2],
                        "@sidecar-test-shm-agents unix:///run/apm.sock");
    sc_shared_writer_t *w[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            sc_shared_writer_open(keys[i], 100 + (uint32_t)i, &w[i]), 0);
        char info[64];
        int n = snprintf(info, sizeof info, "{\"agent\":%d}", i);
        sc_shared_publish_info(w[i], info, (size_t)n);
    }
    sc_shared_record_t *r = malloc(sizeof *r);
    for (int i = 0; i < 3; i++) {
        char info[64];
        snprintf(info, sizeof info, "{\"agent\":%d}", i);
        assert_int_equal(sc_shared_read(keys[i], r), 0);
        assert_int_equal(r->pid, 100 + i);
        assert_string_equal(r->info, info);
    }
    for (int i = 0; i < 3; i++) {
        sc_shared_writer_close(w[i]);
    }
    free(r);
}

#ifndef _WIN32 /* mkdtemp, setenv: the file fallback is POSIX's */
static void file_fallback(void **state)
{
    (void)state;
    char dir[] = "/tmp/sidecar-shm-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("TMPDIR", dir, 1);
    setenv("DD_TRACE_SIDECAR_SHM", "file", 1);
    const char *ep = "@sidecar-test-shm-file";
    sc_shared_writer_t *w = NULL;
    assert_int_equal(sc_shared_writer_open(ep, 7, &w), 0);
    char name[128], path[300];
    sc_shared_name(ep, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s.shm", dir, name);
    uv_fs_t req;
    assert_int_equal(uv_fs_stat(NULL, &req, path, NULL), 0);
    /* Never world-readable. */
    assert_int_equal(req.statbuf.st_mode & 0777, 0600);
    uv_fs_req_cleanup(&req);
    sc_shared_writer_close(w);
    write_read_through_a_named_segment(ep);
    unsetenv("DD_TRACE_SIDECAR_SHM");
    unsetenv("TMPDIR");
    uv_fs_rmdir(NULL, &req, dir, NULL);
    uv_fs_req_cleanup(&req);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_never_sees_a_torn_record),
        cmocka_unit_test(named_segment),
        cmocka_unit_test(one_segment_per_agent),
#ifndef _WIN32
        cmocka_unit_test(file_fallback),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

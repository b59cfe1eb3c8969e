/* See ledger.h. */
#include "ledger.h"

#include "log.h"
#include "platform.h"
#include "shared_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC  0x474c4353u /* "SCLG" */
#define LAYOUT 1u

typedef struct ledger_record {
    uint32_t magic;
    uint32_t layout;
    uint32_t owner_pid;
    uint32_t reserved;
    sc_ledger_held_t held;
    sc_ledger_loss_t lost; /* by this owner's killed predecessors */
    sc_sessions_t sessions;
} ledger_record_t;

struct sc_ledger {
    sc_plat_shm_t *shm; /* NULL: `rec` is on the heap */
    ledger_record_t *rec;
    char name[128];
};

static void segment_name(const char *endpoint, char *out, size_t size)
{
    char key[300];
    snprintf(key, sizeof key, "ledger:%s", endpoint);
    sc_shared_name(key, out, size);
}

/* Reads the previous owner's record, if a valid one is there. */
static void read_previous(const char *name, ledger_record_t *rec,
                          sc_ledger_predecessor_t *prev)
{
    sc_plat_shm_t *old = NULL;
    if (sc_plat_shm_open_readonly(name, &old) != 0) {
        return;
    }
    const ledger_record_t *r = sc_plat_shm_addr(old);
    if (sc_plat_shm_size(old) >= sizeof *r && r->magic == MAGIC &&
        r->layout == LAYOUT && r->owner_pid != 0 &&
        r->owner_pid != sc_plat_getpid()) {
        prev->pid = r->owner_pid;
        prev->killed = !sc_plat_process_alive(r->owner_pid);
        prev->lost = r->lost;
        if (prev->killed) {
            const sc_ledger_held_t *h = &r->held;
            prev->lost.payloads += h->payloads - h->sent_payloads;
            prev->lost.traces += h->traces - h->sent_traces;
            prev->lost.unconfirmed_payloads += h->sent_payloads;
            prev->lost.unconfirmed_traces += h->sent_traces;
        }
        rec->lost = prev->lost;
        /* Alive (a sidecar still draining) or not, what it handled stays
         * handled: a frame sent again is a duplicate here too. */
        rec->sessions = r->sessions;
    }
    sc_plat_shm_close(old, false);
}

sc_ledger_t *sc_ledger_open(const char *endpoint, sc_ledger_predecessor_t *prev)
{
    memset(prev, 0, sizeof *prev);
    sc_ledger_t *l = calloc(1, sizeof *l);
    ledger_record_t *staged = calloc(1, sizeof *staged);
    if (l == NULL || staged == NULL) {
        free(l);
        free(staged);
        return NULL;
    }
    segment_name(endpoint, l->name, sizeof l->name);
    read_previous(l->name, staged, prev);
    staged->magic = MAGIC;
    staged->layout = LAYOUT;
    staged->owner_pid = sc_plat_getpid();
    int rc = sc_plat_shm_create(l->name, sizeof *staged, &l->shm);
    if (rc == 0) {
        l->rec = sc_plat_shm_addr(l->shm);
        memcpy(l->rec, staged, sizeof *staged);
        free(staged);
    } else {
        sc_log(SC_LOG_WARN,
               "no ledger for %s (%s): what a killed sidecar held will not "
               "be counted by the next one",
               endpoint, uv_strerror(rc));
        l->shm = NULL;
        l->rec = staged;
    }
    if (prev->killed) {
        sc_log(SC_LOG_WARN,
               "the previous sidecar (pid %u) was killed; with those before "
               "it, %llu payloads (%llu traces) lost and %llu (%llu traces) "
               "sent without an answer: counted under \"predecessor\"",
               (unsigned)prev->pid, (unsigned long long)prev->lost.payloads,
               (unsigned long long)prev->lost.traces,
               (unsigned long long)prev->lost.unconfirmed_payloads,
               (unsigned long long)prev->lost.unconfirmed_traces);
    }
    return l;
}

sc_ledger_held_t *sc_ledger_held(sc_ledger_t *l)
{
    return &l->rec->held;
}

sc_sessions_t *sc_ledger_sessions(sc_ledger_t *l)
{
    return &l->rec->sessions;
}

void sc_ledger_close(sc_ledger_t *l)
{
    if (l == NULL) {
        return;
    }
    if (l->shm != NULL) {
        /* The name is removed only while it is still ours: not by a fork
         * child of a thread-mode master (which inherited the mapping), not
         * after a successor made its own under the same name. */
        bool ours = false;
        sc_plat_shm_t *current = NULL;
        if (sc_plat_shm_open_readonly(l->name, &current) == 0) {
            const ledger_record_t *r = sc_plat_shm_addr(current);
            ours = sc_plat_shm_size(current) >= sizeof *r &&
                   r->magic == MAGIC && r->owner_pid == sc_plat_getpid() &&
                   l->rec->owner_pid == sc_plat_getpid();
            sc_plat_shm_close(current, false);
        }
        sc_plat_shm_close(l->shm, ours);
    } else {
        free(l->rec);
    }
    free(l);
}

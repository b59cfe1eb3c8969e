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
    sc_sessions_t sessions;
} ledger_record_t;

struct sc_ledger {
    sc_plat_shm_t *shm; /* NULL: `rec` is on the heap */
    ledger_record_t *rec;
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
        prev->dead = !sc_plat_process_alive(r->owner_pid);
        if (prev->dead) {
            prev->lost = r->held;
        }
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
    char name[128];
    segment_name(endpoint, name, sizeof name);
    read_previous(name, staged, prev);
    staged->magic = MAGIC;
    staged->layout = LAYOUT;
    staged->owner_pid = sc_plat_getpid();
    int rc = sc_plat_shm_create(name, sizeof *staged, &l->shm);
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
    if (prev->dead && (prev->lost.payloads > 0 || prev->lost.traces > 0)) {
        sc_log(SC_LOG_WARN,
               "the previous sidecar (pid %u) died holding %llu payloads "
               "(%llu traces): lost, counted under \"predecessor\"",
               (unsigned)prev->pid, (unsigned long long)prev->lost.payloads,
               (unsigned long long)prev->lost.traces);
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
        /* Only its owner removes it (never a fork child of a thread-mode
         * master, which inherited the mapping). */
        sc_plat_shm_close(l->shm, l->rec->owner_pid == sc_plat_getpid());
    } else {
        free(l->rec);
    }
    free(l);
}

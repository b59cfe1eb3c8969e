/* The spawner's side of starting a daemon (docs/runtime.md, subprocess mode).
 *
 * POSIX hands the daemon a bound socket. Here the spawner wins the
 * endpoint's election (the mutex: "the claim is the lock") and keeps it
 * until the daemon takes over; the daemon binds its own pipe. In order:
 *
 *   spawner: claim (UV_EADDRINUSE: someone else owns it), publish
 *            STARTING under its own pid (clients wait), create the event
 *            "Local\<base>-handoff-<spawner pid>", start the daemon with
 *            --listen-fd <spawner pid>, wait for the event (or the daemon's
 *            exit, or 5 s), publish STARTING under the daemon's pid, and
 *            release the mutex (sc_plat_close_raw);
 *   daemon:  open the rendezvous (so it outlives the spawner's handle),
 *            SignalObjectAndWait(event, mutex): "ready" and the wait for
 *            the election are one step, so the mutex goes straight from
 *            spawner to daemon; then bind, listen, publish LISTENING
 *            (win32_listen.c). */
#include "win32_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* How long a spawner waits for its daemon to be ready to take over. */
#define HANDOFF_WAIT_MS 5000

typedef struct handoff {
    win32_claim_t *claim;
    HANDLE ready;
    uint32_t daemon_pid; /* nonzero once the daemon said it takes over */
    struct handoff *next;
} handoff_t;

static SRWLOCK handoffs_lock = SRWLOCK_INIT;
static handoff_t *handoffs;

/* Finds (and with `unlink`, removes) the handoff whose mutex is `h`. */
static handoff_t *find_handoff(int64_t h, bool unlink)
{
    AcquireSRWLockExclusive(&handoffs_lock);
    handoff_t *found = NULL;
    for (handoff_t **p = &handoffs; *p != NULL; p = &(*p)->next) {
        if ((int64_t)(intptr_t)win32_claim_mutex((*p)->claim) == h) {
            found = *p;
            if (unlink) {
                *p = found->next;
            }
            break;
        }
    }
    ReleaseSRWLockExclusive(&handoffs_lock);
    return found;
}

int sc_plat_bind_handoff(const char *endpoint, int backlog, int64_t *handle)
{
    (void)backlog; /* the daemon listens with its own */
    handoff_t *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return UV_ENOMEM;
    }
    int rc = win32_claim(endpoint, 0, NULL, &h->claim);
    if (rc != 0) {
        free(h);
        return rc;
    }
    char suffix[32];
    WCHAR name[WIN32_NAME_MAX];
    snprintf(suffix, sizeof suffix, "-handoff-%lu", GetCurrentProcessId());
    rc = win32_object_name(endpoint, suffix, name, WIN32_NAME_MAX);
    if (rc == 0) {
        h->ready = win32_private_event(name);
        rc = h->ready != NULL ? 0 : win32_error(GetLastError());
    }
    if (rc != 0) {
        win32_claim_release(h->claim, false);
        free(h);
        return rc;
    }
    ResetEvent(h->ready); /* left set by an earlier handover of ours */
    sc_rendezvous_t e = {.pid = GetCurrentProcessId(),
                         .state = SC_RENDEZVOUS_STARTING};
    win32_claim_publish(h->claim, &e);
    AcquireSRWLockExclusive(&handoffs_lock);
    h->next = handoffs;
    handoffs = h;
    ReleaseSRWLockExclusive(&handoffs_lock);
    *handle = (int64_t)(intptr_t)win32_claim_mutex(h->claim);
    return 0;
}

int64_t sc_plat_passed_handle_value(int64_t pass_handle)
{
    (void)pass_handle;
    return (int64_t)GetCurrentProcessId(); /* names the handoff event */
}

void win32_handoff_await(int64_t pass_handle, HANDLE daemon,
                         uint32_t daemon_pid)
{
    handoff_t *h = find_handoff(pass_handle, false);
    if (h == NULL) {
        return;
    }
    HANDLE wait[2] = {h->ready, daemon};
    if (WaitForMultipleObjects(2, wait, FALSE, HANDOFF_WAIT_MS) ==
        WAIT_OBJECT_0) {
        h->daemon_pid = daemon_pid;
    }
}

void sc_plat_close_raw(int64_t handle)
{
    if (handle < 0) {
        return;
    }
    handoff_t *h = find_handoff(handle, true);
    if (h == NULL) {
        CloseHandle((HANDLE)(intptr_t)handle);
        return;
    }
    /* Releasing hands the mutex to the daemon waiting for it; clients
     * keep waiting for the daemon meanwhile. Without a daemon waiting,
     * the name is free again. */
    if (h->daemon_pid != 0) {
        sc_rendezvous_t e = {.pid = h->daemon_pid,
                             .state = SC_RENDEZVOUS_STARTING};
        win32_claim_publish(h->claim, &e);
    }
    win32_claim_release(h->claim, h->daemon_pid != 0);
    CloseHandle(h->ready);
    free(h);
}

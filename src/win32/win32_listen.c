/* The sidecar's listening pipe.
 *
 * libuv 1.44 cannot listen on a pipe handle it did not create (uv_pipe_open
 * + uv_listen fails), so the pipe is created by uv_pipe_bind, on the
 * owner's own name (win32_election.c), and its DACL is then replaced the
 * way uv_pipe_chmod does it: SYSTEM and this user, network logons denied;
 * configured identities are added as clients by sc_plat_listen_allow. libuv
 * creates its instances without PIPE_REJECT_REMOTE_CLIENTS and a pipe's
 * security descriptor is shared by all its instances, so the deny-NETWORK entry
 * stands in for that flag, on the first instance before uv_listen creates the
 * others. Until SetSecurityInfo returns, the first instance has the default
 * DACL (Everyone may read); sc_plat_peer checks every client's token anyway,
 * and rejects what slips through. */
#include "win32_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a daemon waits for its spawner to hand the election over. */
#define TAKEOVER_WAIT_MS 10000

typedef struct listening {
    win32_claim_t *claim;
    struct listening *next;
} listening_t;

static SRWLOCK listening_lock = SRWLOCK_INIT;
static listening_t *listening;
/* Distinguishes the pipe names of successive listens of this process on
 * one endpoint (clients of an earlier one may keep its name alive). */
static volatile LONG generations;

/* The pipe's DACL: deny network logons, allow SYSTEM, this user and the
 * `n` configured SIDs (as clients only). */
static int restrict_access(uv_pipe_t *server, const char *const *sids, size_t n)
{
    uv_os_fd_t pipe;
    int rc = uv_fileno((const uv_handle_t *)server, &pipe);
    if (rc != 0) {
        return rc;
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    rc = win32_shared_sd(true, sids, n, WIN32_PIPE_CLIENT_ACCESS, &sd);
    if (rc == 0) {
        rc = win32_set_dacl(pipe, sd);
    }
    LocalFree(sd);
    return rc;
}

/* Binds and listens as the owner of `claim`, then says so in the
 * rendezvous. On failure the claim is released. */
static int listen_claimed(uv_pipe_t *server, win32_claim_t *claim, int backlog,
                          uv_connection_cb on_connection)
{
    const char *endpoint = win32_claim_endpoint(claim);
    sc_rendezvous_t e = {.pid = GetCurrentProcessId(),
                         .state = SC_RENDEZVOUS_STARTING};
    char name[SC_ENDPOINT_MAX + 32];
    int rc = UV_EADDRINUSE;
    /* A name of ours from an earlier life of this pid may still be held
     * open by a stale client: take the next generation then. */
    for (int attempt = 0; attempt < 4 && rc == UV_EADDRINUSE; attempt++) {
        /* The record holds 24 bits of it: the name must be the one a
         * client builds from the record. */
        e.generation = ((uint32_t)InterlockedIncrement(&generations) - 1) &
                       SC_RENDEZVOUS_GENERATION_MAX;
        win32_claim_publish(claim, &e);
        rc = sc_rendezvous_pipe_name(endpoint, &e, name, sizeof name);
        if (rc == 0) {
            rc = uv_pipe_bind(server, name);
        }
    }
    if (rc == 0) {
        rc = restrict_access(server, NULL, 0);
    }
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)server, backlog, on_connection);
    }
    listening_t *l = rc == 0 ? malloc(sizeof *l) : NULL;
    if (l == NULL) {
        win32_claim_release(claim, false);
        return rc != 0 ? rc : UV_ENOMEM;
    }
    e.state = SC_RENDEZVOUS_LISTENING;
    win32_claim_publish(claim, &e);
    l->claim = claim;
    AcquireSRWLockExclusive(&listening_lock);
    l->next = listening;
    listening = l;
    ReleaseSRWLockExclusive(&listening_lock);
    return 0;
}

int sc_plat_listen(uv_pipe_t *server, const char *endpoint, int backlog,
                   uv_connection_cb on_connection)
{
    win32_claim_t *claim = NULL;
    int rc = win32_claim(endpoint, 0, NULL, &claim);
    if (rc != 0) {
        return rc;
    }
    return listen_claimed(server, claim, backlog, on_connection);
}

/* The daemon's side of a handover (win32_handoff.c has the spawner's):
 * hold the rendezvous, tell the spawner "ready" and wait for the election
 * in one step, so the mutex passes from spawner to daemon with nobody else
 * in between. */
int sc_plat_listen_handle(uv_pipe_t *server, const char *endpoint,
                          int64_t handle, uv_connection_cb on_connection)
{
    HANDLE mapping = NULL;
    int rc = win32_rendezvous_hold(endpoint, &mapping);
    if (rc != 0) {
        return rc;
    }
    char suffix[32];
    WCHAR name[WIN32_NAME_MAX];
    snprintf(suffix, sizeof suffix, "-handoff-%lld", (long long)handle);
    HANDLE ready = NULL;
    if (win32_object_name(endpoint, suffix, name, WIN32_NAME_MAX) == 0) {
        /* Gone when the spawner gave up waiting: then just wait. */
        ready = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
    }
    win32_claim_t *claim = NULL;
    rc = win32_claim(endpoint, TAKEOVER_WAIT_MS, ready, &claim);
    if (ready != NULL) {
        CloseHandle(ready);
    }
    CloseHandle(mapping);
    if (rc != 0) {
        return rc;
    }
    return listen_claimed(server, claim, SOMAXCONN, on_connection);
}

/* Called after listening: until then the configured identities are only
 * refused (their connects fail and they retry), never let in early. */
int sc_plat_listen_allow(uv_pipe_t *server, const char *endpoint,
                         const char *const *sids, size_t n)
{
    if (n == 0) {
        return 0;
    }
    int rc = restrict_access(server, sids, n);
    if (rc != 0) {
        return rc;
    }
    /* Clients find the pipe through the rendezvous: they must read it. */
    PSECURITY_DESCRIPTOR sd = NULL;
    rc = win32_shared_sd(false, sids, n, WIN32_MAPPING_READ_ACCESS, &sd);
    AcquireSRWLockShared(&listening_lock);
    listening_t *l = listening;
    while (l != NULL && strcmp(win32_claim_endpoint(l->claim), endpoint) != 0) {
        l = l->next;
    }
    if (rc == 0) {
        rc = l != NULL ? win32_set_dacl(win32_claim_rendezvous(l->claim), sd)
                       : UV_ENOENT;
    }
    ReleaseSRWLockShared(&listening_lock);
    LocalFree(sd);
    return rc;
}

void sc_plat_unlisten(const char *endpoint)
{
    AcquireSRWLockExclusive(&listening_lock);
    listening_t *found = NULL;
    for (listening_t **p = &listening; *p != NULL; p = &(*p)->next) {
        if (strcmp(win32_claim_endpoint((*p)->claim), endpoint) == 0) {
            found = *p;
            *p = found->next;
            break;
        }
    }
    ReleaseSRWLockExclusive(&listening_lock);
    if (found != NULL) {
        win32_claim_release(found->claim, false);
        free(found);
    }
}

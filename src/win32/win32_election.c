/* Who owns an endpoint, and where it listens.
 *
 * The owner of "\\.\pipe\<base>" is whoever holds the named mutex
 * "Local\<base>-owner": held for the owner's lifetime, released by Windows
 * when the owner dies (the next claimant gets WAIT_ABANDONED and wins).
 * Wine honours this, unlike FILE_FLAG_FIRST_PIPE_INSTANCE and pipe DACLs.
 *
 * The owner does not listen on <base> itself but on "<base>-<pid>[-<n>]",
 * published in the rendezvous "Local\<base>-rendezvous" (one 64-bit word:
 * pid, state, generation; its layout and checks are src/common/rendezvous.c). A
 * pipe name lives on while any client still holds a handle to it, even after
 * its server died; libuv 1.44 creates its first instance with
 * FILE_FLAG_FIRST_PIPE_INSTANCE, so a successor could not bind the same name
 * until every stale client had noticed. Per-owner names never collide, and the
 * rendezvous also lets a client tell "an owner is starting, wait" (state
 * STARTING) from "nobody owns it". */
#include "win32_internal.h"

#include <stdlib.h>
#include <string.h>

#define RENDEZVOUS_SIZE 4096u

struct win32_claim {
    HANDLE mutex;
    HANDLE mapping;
    void *view; /* the rendezvous word */
    char endpoint[SC_ENDPOINT_MAX + 1];
    win32_claim_t *next;
};

/* Claims this process holds: a mutex is recursive for its owning thread,
 * so a second claim of a held endpoint must be refused here. */
static SRWLOCK held_lock = SRWLOCK_INIT;
static win32_claim_t *held;

static bool is_held(const char *endpoint)
{
    AcquireSRWLockShared(&held_lock);
    bool found = false;
    for (win32_claim_t *c = held; c != NULL && !found; c = c->next) {
        found = strcmp(c->endpoint, endpoint) == 0;
    }
    ReleaseSRWLockShared(&held_lock);
    return found;
}

/* Creates (or opens) the rendezvous mapping, private to this user. */
static int create_mapping(const char *endpoint, HANDLE *out)
{
    WCHAR name[WIN32_NAME_MAX];
    int rc = win32_object_name(endpoint, "-rendezvous", name, WIN32_NAME_MAX);
    if (rc != 0) {
        return rc;
    }
    HANDLE h = win32_private_mapping(name, RENDEZVOUS_SIZE);
    if (h == NULL) {
        return win32_error(GetLastError());
    }
    *out = h;
    return 0;
}

int win32_rendezvous_hold(const char *endpoint, HANDLE *mapping)
{
    return create_mapping(endpoint, mapping);
}

int win32_claim(const char *endpoint, uint32_t wait_ms, HANDLE signal_first,
                win32_claim_t **out)
{
    if (strlen(endpoint) > SC_ENDPOINT_MAX) {
        return UV_ENAMETOOLONG;
    }
    if (is_held(endpoint)) {
        return UV_EADDRINUSE;
    }
    WCHAR name[WIN32_NAME_MAX];
    int rc = win32_object_name(endpoint, "-owner", name, WIN32_NAME_MAX);
    if (rc != 0) {
        return rc;
    }
    /* Someone else's object of that name (a squatter) is not ours to
     * use: CreateMutexW then fails with ERROR_ACCESS_DENIED. */
    HANDLE mutex = win32_private_mutex(name);
    if (mutex == NULL) {
        return win32_error(GetLastError());
    }
    DWORD wait = signal_first != NULL
                     ? SignalObjectAndWait(signal_first, mutex, wait_ms, FALSE)
                     : WaitForSingleObject(mutex, wait_ms);
    if (wait != WAIT_OBJECT_0 && wait != WAIT_ABANDONED) {
        DWORD err = GetLastError();
        CloseHandle(mutex);
        return wait == WAIT_TIMEOUT ? UV_EADDRINUSE : win32_error(err);
    }
    win32_claim_t *c = calloc(1, sizeof *c);
    HANDLE mapping = NULL;
    rc = c != NULL ? create_mapping(endpoint, &mapping) : UV_ENOMEM;
    void *view =
        rc == 0 ? MapViewOfFile(mapping, FILE_MAP_WRITE, 0, 0, RENDEZVOUS_SIZE)
                : NULL;
    if (view == NULL) {
        if (rc == 0) {
            rc = win32_error(GetLastError());
            CloseHandle(mapping);
        }
        free(c);
        ReleaseMutex(mutex);
        CloseHandle(mutex);
        return rc;
    }
    c->mutex = mutex;
    c->mapping = mapping;
    c->view = view;
    strcpy(c->endpoint, endpoint);
    AcquireSRWLockExclusive(&held_lock);
    c->next = held;
    held = c;
    ReleaseSRWLockExclusive(&held_lock);
    *out = c;
    return 0;
}

void win32_claim_publish(win32_claim_t *c, const sc_rendezvous_t *e)
{
    uint64_t word;
    if (sc_rendezvous_pack(e, &word) == 0) {
        InterlockedExchange64((volatile LONG64 *)c->view, (LONG64)word);
    }
}

HANDLE win32_claim_mutex(const win32_claim_t *c)
{
    return c->mutex;
}

HANDLE win32_claim_rendezvous(const win32_claim_t *c)
{
    return c->mapping;
}

const char *win32_claim_endpoint(const win32_claim_t *c)
{
    return c->endpoint;
}

void win32_claim_release(win32_claim_t *c, bool keep_entry)
{
    if (c == NULL) {
        return;
    }
    AcquireSRWLockExclusive(&held_lock);
    for (win32_claim_t **p = &held; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    ReleaseSRWLockExclusive(&held_lock);
    if (!keep_entry) {
        InterlockedExchange64((volatile LONG64 *)c->view, 0);
    }
    UnmapViewOfFile(c->view);
    CloseHandle(c->mapping);
    /* Only the owning thread can release; from any other thread the mutex
     * stays owned until that thread ends (then it is abandoned, which the
     * next claimant also counts as won). */
    ReleaseMutex(c->mutex);
    CloseHandle(c->mutex);
    free(c);
}

int win32_rendezvous_read(const char *endpoint, sc_rendezvous_t *e)
{
    WCHAR name[WIN32_NAME_MAX];
    int rc = win32_object_name(endpoint, "-rendezvous", name, WIN32_NAME_MAX);
    if (rc != 0) {
        return rc;
    }
    HANDLE h = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    if (h == NULL) {
        DWORD err = GetLastError();
        return err == ERROR_FILE_NOT_FOUND ? UV_ENOENT : win32_error(err);
    }
    const void *view = MapViewOfFile(h, FILE_MAP_READ, 0, 0, sizeof(LONG64));
    if (view == NULL) {
        rc = win32_error(GetLastError());
        CloseHandle(h);
        return rc;
    }
    /* An aligned 64-bit load is atomic; the writer uses Interlocked. */
    uint64_t word = (uint64_t) * (const volatile LONG64 *)view;
    UnmapViewOfFile(view);
    CloseHandle(h);
    return sc_rendezvous_parse(word, e);
}

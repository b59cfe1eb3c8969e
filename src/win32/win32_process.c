/* Process facts. Windows keeps a parent pid for every process but never
 * updates it: when the parent dies its pid may be reused by an unrelated
 * process, so parent links are checked against creation times. */
#include "win32_internal.h"

#include <stdlib.h>
#include <tlhelp32.h>

uint32_t sc_plat_getpid(void)
{
    return (uint32_t)GetCurrentProcessId();
}

int64_t sc_plat_wall_ms_coarse(void)
{
    /* 100 ns units since 1601, updated at the system timer's tick. */
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    uint64_t t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
    return (int64_t)((t - UINT64_C(116444736000000000)) / 10000);
}

int sc_plat_thread_create(uv_thread_t *t, void (*fn)(void *arg), void *arg)
{
    return uv_thread_create(t, fn, arg); /* no SIGPIPE on Windows */
}

typedef struct parent_link {
    DWORD pid, ppid;
} parent_link_t;

/* Every process's recorded parent, from one snapshot (malloc'ed). */
static parent_link_t *snapshot_parents(size_t *count)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    if (snap == INVALID_HANDLE_VALUE) {
        return NULL;
    }
    size_t n = 0, cap = 256;
    parent_link_t *links = malloc(cap * sizeof *links);
    PROCESSENTRY32W pe = {.dwSize = sizeof pe};
    for (BOOL ok = Process32FirstW(snap, &pe); ok && links != NULL;
         ok = Process32NextW(snap, &pe)) {
        if (n == cap) {
            cap *= 2;
            parent_link_t *grown = realloc(links, cap * sizeof *links);
            if (grown == NULL) {
                free(links);
                links = NULL;
                break;
            }
            links = grown;
        }
        links[n].pid = pe.th32ProcessID;
        links[n].ppid = pe.th32ParentProcessID;
        n++;
    }
    CloseHandle(snap);
    *count = n;
    return links;
}

static bool find_parent(const parent_link_t *links, size_t n, DWORD pid,
                        DWORD *ppid)
{
    for (size_t i = 0; i < n; i++) {
        if (links[i].pid == pid) {
            *ppid = links[i].ppid;
            return true;
        }
    }
    return false;
}

uint32_t sc_plat_getppid(void)
{
    size_t n = 0;
    parent_link_t *links = snapshot_parents(&n);
    DWORD ppid = 0;
    if (links != NULL && !find_parent(links, n, GetCurrentProcessId(), &ppid)) {
        ppid = 0;
    }
    free(links);
    return (uint32_t)ppid;
}

bool win32_process_running(uint32_t pid)
{
    if (pid == 0) {
        return false;
    }
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE,
                           FALSE, pid);
    if (h == NULL) {
        /* Exists, but not ours to open (as EPERM from kill() on POSIX). */
        return GetLastError() == ERROR_ACCESS_DENIED;
    }
    bool running = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
    CloseHandle(h);
    return running;
}

bool sc_plat_process_alive(uint32_t pid)
{
    return win32_process_running(pid);
}

/* Creation time of `pid` (0 when it cannot be read). */
static uint64_t created_at(DWORD pid)
{
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    FILETIME created, exited, kernel, user;
    uint64_t t = 0;
    if (h != NULL && GetProcessTimes(h, &created, &exited, &kernel, &user)) {
        t = (uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime;
    }
    if (h != NULL) {
        CloseHandle(h);
    }
    return t;
}

bool sc_plat_is_descendant(uint32_t pid, uint32_t ancestor)
{
    if (pid == ancestor) {
        return pid != 0;
    }
    size_t n = 0;
    parent_link_t *links = snapshot_parents(&n);
    if (links == NULL) {
        return false;
    }
    bool found = false;
    DWORD cur = pid;
    uint64_t cur_created = created_at(cur);
    /* Bounded: a reused pid could otherwise close a cycle. */
    for (int depth = 0; depth < 64 && !found; depth++) {
        DWORD parent = 0;
        if (!find_parent(links, n, cur, &parent) || parent == 0 ||
            parent == cur) {
            break;
        }
        /* A "parent" created after its child is a reused pid: the real
         * parent is gone, and so is the chain. */
        uint64_t parent_created = created_at(parent);
        if (parent_created != 0 && cur_created != 0 &&
            parent_created > cur_created) {
            break;
        }
        found = parent == ancestor;
        cur = parent;
        cur_created = parent_created;
    }
    free(links);
    return found;
}

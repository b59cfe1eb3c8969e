/* Detached daemon start. No fork, so no fork handlers either. */
#include "win32_internal.h"

#include <stdlib.h>
#include <string.h>

#define CMDLINE_MAX 32768 /* CreateProcessW's limit, in characters */

/* Appends `arg` quoted the way CommandLineToArgvW and the C runtime split
 * command lines: quotes around it when it is empty or holds blanks or
 * quotes; backslashes are doubled only before a quote. */
static bool append_arg(WCHAR *cmd, size_t *len, const char *arg)
{
    WCHAR w[4096];
    if (win32_widen(arg, w, sizeof w / sizeof w[0]) != 0) {
        return false;
    }
    bool quote = w[0] == L'\0' || wcspbrk(w, L" \t\n\v\"") != NULL;
    size_t n = *len;
    /* Worst case: every character a backslash doubled, plus quotes. */
    if (n + 2 * wcslen(w) + 4 >= CMDLINE_MAX) {
        return false;
    }
    if (n > 0) {
        cmd[n++] = L' ';
    }
    if (quote) {
        cmd[n++] = L'"';
    }
    for (const WCHAR *p = w;; p++) {
        size_t backslashes = 0;
        while (*p == L'\\') {
            backslashes++;
            p++;
        }
        if (*p == L'\0') {
            /* Before the closing quote, backslashes must be doubled. */
            for (size_t i = 0; i < (quote ? 2 * backslashes : backslashes);
                 i++) {
                cmd[n++] = L'\\';
            }
            break;
        }
        if (*p == L'"') {
            for (size_t i = 0; i < 2 * backslashes + 1; i++) {
                cmd[n++] = L'\\';
            }
        } else {
            for (size_t i = 0; i < backslashes; i++) {
                cmd[n++] = L'\\';
            }
        }
        cmd[n++] = *p;
    }
    if (quote) {
        cmd[n++] = L'"';
    }
    cmd[n] = L'\0';
    *len = n;
    return true;
}

int sc_plat_spawn_detached(const char *const argv[], int64_t pass_handle,
                           uint32_t *pid)
{
    WCHAR *cmd = malloc(CMDLINE_MAX * sizeof *cmd);
    if (cmd == NULL) {
        return UV_ENOMEM;
    }
    size_t len = 0;
    cmd[0] = L'\0';
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (!append_arg(cmd, &len, argv[i])) {
            free(cmd);
            return UV_E2BIG;
        }
    }
    /* The daemon must not keep the caller's directory open (Windows would
     * refuse to delete it): it runs in the system directory. */
    WCHAR dir[MAX_PATH];
    UINT dir_len = GetSystemDirectoryW(dir, MAX_PATH);
    /* No console, its own process group, nothing inherited (so no
     * standard streams: they are the null device's equivalent); out of
     * the caller's job if the job allows it, so that an IIS pool recycle
     * does not take the sidecar down with the worker that started it. */
    DWORD flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP |
                  CREATE_NO_WINDOW | CREATE_BREAKAWAY_FROM_JOB;
    STARTUPINFOW si = {.cb = sizeof si};
    PROCESS_INFORMATION pi;
    BOOL ok = CreateProcessW(NULL, cmd, NULL, NULL, FALSE, flags, NULL,
                             dir_len > 0 && dir_len < MAX_PATH ? dir : NULL,
                             &si, &pi);
    if (!ok && GetLastError() == ERROR_ACCESS_DENIED) {
        flags &= ~(DWORD)CREATE_BREAKAWAY_FROM_JOB; /* the job forbids it */
        ok = CreateProcessW(NULL, cmd, NULL, NULL, FALSE, flags, NULL,
                            dir_len > 0 && dir_len < MAX_PATH ? dir : NULL, &si,
                            &pi);
    }
    DWORD err = GetLastError();
    free(cmd);
    if (!ok) {
        return win32_error(err); /* ERROR_FILE_NOT_FOUND: UV_ENOENT */
    }
    if (pass_handle >= 0) {
        win32_handoff_await(pass_handle, pi.hProcess, pi.dwProcessId);
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    *pid = (uint32_t)pi.dwProcessId;
    return 0;
}

int sc_plat_atfork(void (*prepare)(void), void (*parent)(void),
                   void (*child)(void))
{
    (void)prepare;
    (void)parent;
    (void)child;
    return 0;
}

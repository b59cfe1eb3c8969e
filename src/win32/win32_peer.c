/* Who is on the other end of an accepted pipe connection: the client's
 * process id from the pipe, its identity from that process's token. */
#include "win32_internal.h"

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sc_plat_peer(uv_pipe_t *conn, sc_peer_t *peer)
{
    uv_os_fd_t pipe;
    int rc = uv_fileno((const uv_handle_t *)conn, &pipe);
    if (rc != 0) {
        return rc;
    }
    memset(peer, 0, sizeof *peer);
    ULONG pid = 0;
    if (!GetNamedPipeClientProcessId(pipe, &pid)) {
        return win32_error(GetLastError());
    }
    peer->pid = (uint32_t)pid;
    /* Remote clients never get here: the pipe's DACL denies network
     * logons (win32_listen.c). (GetNamedPipeClientComputerNameW would tell
     * them apart too, but Wine aborts the process on that call.) */
    HANDLE process =
        OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (process == NULL) {
        /* Typically another user's process: we may not look at it. */
        return win32_error(GetLastError());
    }
    bool privileged = false;
    PSID sid = win32_process_sid(process, &privileged);
    CloseHandle(process);
    if (sid == NULL) {
        return UV_EACCES;
    }
    PSID self = win32_self_sid();
    peer->same_user = self != NULL && EqualSid(sid, self);
    peer->privileged = privileged;
    char *text = NULL;
    if (ConvertSidToStringSidA(sid, &text)) {
        snprintf(peer->sid, sizeof peer->sid, "%s", text);
        LocalFree(text);
    }
    free(sid);
    return 0;
}

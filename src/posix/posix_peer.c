/* Peer credentials of an accepted connection. */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

int sc_plat_peer(uv_pipe_t *conn, sc_peer_t *peer)
{
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)conn, &fd);
    if (rc != 0) {
        return rc;
    }
#if defined(SO_PEERCRED)
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return -errno;
    }
    peer->pid = (uint32_t)cred.pid;
    peer->uid = (uint32_t)cred.uid;
#else
    uid_t uid;
    gid_t gid;
    if (getpeereid(fd, &uid, &gid) != 0) {
        return -errno;
    }
    peer->pid = 0;
    peer->uid = (uint32_t)uid;
#endif
    peer->sid[0] = '\0'; /* uids, not SIDs, identify POSIX users */
    peer->privileged = peer->uid == 0;
    peer->same_user = peer->uid == (uint32_t)geteuid();
    return 0;
}

/* Sockets libcurl connects with: overlapped (libuv polls them) and never
 * inherited by a process the host starts. */
#include "win32_internal.h"

#include <winsock2.h>

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_status;

static BOOL CALLBACK start_winsock(INIT_ONCE *once, void *param, void **ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    /* libuv starts Winsock on its first loop; this does not rely on it. */
    WSADATA data;
    int err = WSAStartup(MAKEWORD(2, 2), &data);
    wsa_status = err == 0 ? 0 : win32_error((DWORD)err);
    return TRUE;
}

int sc_plat_socket_open(int family, int type, int protocol, uv_os_sock_t *out)
{
    InitOnceExecuteOnce(&wsa_once, start_winsock, NULL, NULL);
    if (wsa_status != 0) {
        return wsa_status;
    }
    SOCKET s = WSASocketW(family, type, protocol, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        return win32_error((DWORD)WSAGetLastError());
    }
    *out = s;
    return 0;
}

void sc_plat_socket_close(uv_os_sock_t sock)
{
    closesocket(sock);
}

void sc_plat_socket_set_cloexec(uv_os_sock_t sock)
{
    SetHandleInformation((HANDLE)sock, HANDLE_FLAG_INHERIT, 0);
}

void sc_plat_fds_before(sc_plat_fds_t *fds)
{
    memset(fds, 0, sizeof *fds);
}

void sc_plat_cloexec_new_sockets(const sc_plat_fds_t *before)
{
    (void)before;
}

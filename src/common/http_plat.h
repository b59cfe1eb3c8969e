/* What src/common/http.c needs from the platform layer (src/posix/,
 * src/win32/): opening and closing the sockets libcurl connects with, so
 * that the event loop stops polling a socket before it is closed, and so
 * that every socket is close-on-exec / not inherited.
 *
 * POSIX: socket(family, type | SOCK_CLOEXEC, protocol) (or fcntl FD_CLOEXEC
 * where SOCK_CLOEXEC does not exist), and close().
 * Windows: WSASocketW(family, type, protocol, NULL, 0,
 * WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT) (overlapped, because
 * libuv polls it through AFD), and closesocket(). */
#ifndef SIDECAR_HTTP_PLAT_H
#define SIDECAR_HTTP_PLAT_H

#include <uv.h>

/* Creates a socket. Returns 0 and the socket in `*out`, or a negative
 * UV_E* error. */
int sc_plat_socket_open(int family, int type, int protocol, uv_os_sock_t *out);

/* Closes a socket made by sc_plat_socket_open. */
void sc_plat_socket_close(uv_os_sock_t sock);

#endif

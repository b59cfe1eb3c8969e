/* Shared by the src/posix/ files only. */
#ifndef SIDECAR_POSIX_INTERNAL_H
#define SIDECAR_POSIX_INTERNAL_H

#include <sys/socket.h>
#include <sys/un.h>

/* Fills a sockaddr_un for an endpoint string ('@name' is abstract) and its
 * exact length: an abstract address must not be padded with NULs, or it names
 * a different socket. Returns 0 or UV_ENAMETOOLONG / UV_EINVAL. */
int posix_endpoint_addr(const char *endpoint, struct sockaddr_un *addr,
                        socklen_t *len);

/* A close-on-exec, non-blocking Unix stream socket, or a negative UV error. */
int posix_unix_socket(void);

#endif

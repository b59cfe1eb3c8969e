/* The client side of a connection: an overlapped pipe handle, no event
 * loop, so a request thread only pays for a WriteFile.
 *
 * Non-blocking writes: a write copies what fits into the connection's own
 * buffer (64 KiB) and issues one overlapped WriteFile. If the pipe takes
 * it at once, done; if it pends (the pipe's buffer is full), the bytes are
 * still reported written, as a socket's send buffer would have taken them,
 * and further writes return 0 ("would block") until it completes. Bytes of
 * a pending write are lost only when the connection breaks, as bytes in a
 * socket's buffer would be. Reads go through a second buffer with one
 * overlapped ReadFile outstanding at most. (PIPE_NOWAIT, the other way to
 * get non-blocking pipes, is documented as legacy and has no way to wait.)
 *
 * Completions arrive on a completion port of the connection's own, not as
 * events: several threads use one connection in turn (under the client's
 * lock), and Windows cancels an overlapped operation when the thread that
 * issued it exits, unless its handle is bound to a completion port (Wine
 * keeps it only when a completion packet is queued for it). Every
 * operation, even one that succeeds at once, queues exactly one packet,
 * and its result is taken from that packet: under Wine the packet can be
 * visible before the OVERLAPPED is updated. */
#include "win32_internal.h"

#include <sddl.h>
#include <stdlib.h>
#include <string.h>

#define CONN_BUF_SIZE 65536

typedef enum op_state {
    OP_IDLE,
    OP_PENDING, /* issued; its completion packet has not come yet */
    OP_DONE,    /* finished; its result not taken yet */
} op_state_t;

typedef struct op {
    OVERLAPPED ov;
    op_state_t state;
    DWORD bytes, error; /* from the completion packet */
} op_t;

struct sc_plat_conn {
    HANDLE pipe;
    HANDLE port;
    op_t r, w;
    int read_error, write_error; /* sticky: surfaced by the next call */
    size_t roff, rlen;           /* unread bytes are rbuf[roff, rlen) */
    uint8_t rbuf[CONN_BUF_SIZE];
    uint8_t wbuf[CONN_BUF_SIZE];
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static int pipe_error(DWORD err)
{
    switch (err) {
    case ERROR_BROKEN_PIPE:
    case ERROR_PIPE_NOT_CONNECTED:
    case ERROR_NO_DATA: /* the server is closing its end */
        return UV_EPIPE;
    default:
        return win32_error(err);
    }
}

/* The server must run as this user: anyone could have put their own pipe
 * name in a rendezvous they created first. */
/* Does the endpoint's name say it belongs to `sid` ("...-<SID>" or
 * "...-<SID>-...")? */
static bool named_after(const char *endpoint, const char *sid)
{
    size_t len = strlen(sid);
    for (const char *p = strstr(endpoint, sid); p != NULL;
         p = strstr(p + 1, sid)) {
        if (p > endpoint && p[-1] == '-' && (p[len] == '\0' || p[len] == '-')) {
            return true;
        }
    }
    return false;
}

/* The rendezvous names who serves the endpoint, but anyone may have
 * created it first: the server must be that process, and run as the
 * identity the endpoint is named after (ours, or the owner that allowed
 * us in, docs/transport.md), or as SYSTEM / an administrator. */
static bool server_is_trusted(HANDLE pipe, uint32_t expected_pid,
                              const char *endpoint)
{
    ULONG pid = 0;
    if (!GetNamedPipeServerProcessId(pipe, &pid) || pid != expected_pid) {
        return false;
    }
    HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (process == NULL) {
        return false;
    }
    bool privileged = false;
    PSID sid = win32_process_sid(process, &privileged);
    CloseHandle(process);
    PSID self = win32_self_sid();
    bool trusted =
        sid != NULL && (privileged || (self != NULL && EqualSid(sid, self)));
    char *text = NULL;
    if (sid != NULL && !trusted && ConvertSidToStringSidA(sid, &text)) {
        trusted = named_after(endpoint, text);
        LocalFree(text);
    }
    free(sid);
    return trusted;
}

static int wrap(HANDLE pipe, sc_plat_conn_t **out)
{
    sc_plat_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        CloseHandle(pipe);
        return UV_ENOMEM;
    }
    c->pipe = pipe;
    c->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (c->port == NULL ||
        CreateIoCompletionPort(pipe, c->port, 0, 0) == NULL) {
        int rc = win32_error(GetLastError());
        sc_plat_conn_close(c);
        return rc;
    }

    *out = c;
    return 0;
}

/* Takes one completion packet off the port, waiting up to `timeout_ms`:
 * its operation is done. Returns 1, 0 on timeout, or an error. */
static int collect(sc_plat_conn_t *c, DWORD timeout_ms)
{
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    OVERLAPPED *ov = NULL;
    BOOL ok = GetQueuedCompletionStatus(c->port, &bytes, &key, &ov, timeout_ms);
    if (ov == NULL) {
        DWORD err = GetLastError();
        return err == WAIT_TIMEOUT ? 0 : win32_error(err);
    }
    op_t *op = ov == &c->r.ov ? &c->r : &c->w;
    op->state = OP_DONE;
    op->bytes = bytes;
    op->error = ok ? 0 : GetLastError(); /* a failed operation's packet */
    return 1;
}

/* Takes every packet already queued (at most one per operation). */
static int collect_ready(sc_plat_conn_t *c)
{
    int rc;
    while ((rc = collect(c, 0)) > 0) {
    }
    return rc;
}

/* Takes the result of a finished operation: bytes, or a negative error. */
static long take_result(op_t *op)
{
    op->state = OP_IDLE;
    return op->error == 0 ? (long)op->bytes : pipe_error(op->error);
}

/* After ReadFile/WriteFile: 0 when a packet will come, or an error. */
static int issued(op_t *op, BOOL ok)
{
    if (ok || GetLastError() == ERROR_IO_PENDING) {
        op->state = OP_PENDING;
        return 0;
    }
    return pipe_error(GetLastError());
}

/* One attempt at the owner's pipe. 1: connected; 0: try again (busy,
 * or the owner is between names); < 0: error. */
static int try_pipe(const char *endpoint, const sc_rendezvous_t *e,
                    uint64_t deadline, sc_plat_conn_t **out)
{
    char name[SC_ENDPOINT_MAX + 32];
    WCHAR wname[SC_ENDPOINT_MAX + 32];
    int rc = sc_rendezvous_pipe_name(endpoint, e, name, sizeof name);
    if (rc == 0) {
        rc = win32_widen(name, wname, SC_ENDPOINT_MAX + 32);
    }
    if (rc != 0) {
        return rc;
    }
    /* Not inheritable (NULL attributes); the server may identify us, not
     * act as us. No more access than a configured identity is granted
     * (WIN32_PIPE_CLIENT_ACCESS: GENERIC_WRITE would include
     * FILE_CREATE_PIPE_INSTANCE). */
    HANDLE pipe = CreateFileW(
        wname, WIN32_PIPE_CLIENT_ACCESS, 0, NULL, OPEN_EXISTING,
        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
        NULL);
    if (pipe != INVALID_HANDLE_VALUE) {
        if (!server_is_trusted(pipe, e->pid, endpoint)) {
            CloseHandle(pipe);
            return UV_EACCES;
        }
        return wrap(pipe, out) == 0 ? 1 : UV_ENOMEM;
    }
    DWORD err = GetLastError();
    if (err == ERROR_PIPE_BUSY) {
        /* Every instance is taken until libuv queues the next accept. */
        uint64_t now = now_ms();
        DWORD wait = now < deadline ? (DWORD)(deadline - now) : 0;
        WaitNamedPipeW(wname, wait > 0 ? wait : 1);
        return 0;
    }
    return err == ERROR_FILE_NOT_FOUND ? 0 : win32_error(err);
}

int sc_plat_conn_open(const char *endpoint, uint32_t timeout_ms,
                      sc_plat_conn_t **out)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        sc_rendezvous_t e;
        int rc = win32_rendezvous_read(endpoint, &e);
        if (rc != 0) {
            return rc; /* UV_ENOENT: nobody owns the name */
        }
        if (!win32_process_running(e.pid)) {
            return UV_ECONNREFUSED; /* its owner died: an election is due */
        }
        if (e.state == SC_RENDEZVOUS_LISTENING) {
            rc = try_pipe(endpoint, &e, deadline, out);
            if (rc != 0) {
                return rc > 0 ? 0 : rc;
            }
        }
        /* An owner that is starting (or re-binding): as a connect to a
         * bound socket waits in its backlog, wait for it. */
        if (now_ms() >= deadline) {
            return UV_ETIMEDOUT;
        }
        Sleep(1);
    }
}

long sc_plat_conn_write(sc_plat_conn_t *c, const void *data, size_t len)
{
    if (c->w.state == OP_PENDING) {
        int rc = collect_ready(c);
        if (rc < 0) {
            return rc;
        }
        if (c->w.state == OP_PENDING) {
            return 0;
        }
    }
    if (c->w.state == OP_DONE) {
        long done = take_result(&c->w);
        if (done < 0) {
            c->write_error = (int)done;
        }
    }
    if (c->write_error != 0) {
        return c->write_error;
    }
    if (len == 0) {
        return 0;
    }
    size_t take = len < CONN_BUF_SIZE ? len : CONN_BUF_SIZE;
    memcpy(c->wbuf, data, take);
    memset(&c->w.ov, 0, sizeof c->w.ov);
    int rc =
        issued(&c->w, WriteFile(c->pipe, c->wbuf, (DWORD)take, NULL, &c->w.ov));
    if (rc < 0) {
        c->write_error = rc;
        return rc;
    }
    return (long)take; /* written, or taken as a socket buffer takes it */
}

/* Makes unread bytes available in rbuf if the pipe has any: > 0 when
 * there are some, 0 when a read is pending, < 0 on error. */
static int fill(sc_plat_conn_t *c)
{
    if (c->roff < c->rlen) {
        return 1;
    }
    if (c->read_error != 0) {
        return c->read_error;
    }
    if (c->r.state == OP_IDLE) {
        memset(&c->r.ov, 0, sizeof c->r.ov);
        int rc = issued(
            &c->r, ReadFile(c->pipe, c->rbuf, CONN_BUF_SIZE, NULL, &c->r.ov));
        if (rc < 0) {
            c->read_error = rc;
            return rc;
        }
    }
    if (c->r.state == OP_PENDING) {
        int rc = collect_ready(c);
        if (rc < 0) {
            return rc;
        }
    }
    if (c->r.state != OP_DONE) {
        return 0;
    }
    long n = take_result(&c->r);
    if (n < 0) {
        c->read_error = (int)n;
        return (int)n;
    }
    c->roff = 0;
    c->rlen = (size_t)n;
    return n > 0 ? 1 : 0;
}

long sc_plat_conn_read(sc_plat_conn_t *c, void *data, size_t len)
{
    int rc = fill(c);
    if (rc <= 0) {
        return rc == UV_EPIPE ? UV_EOF : rc; /* the sidecar closed */
    }
    size_t n = c->rlen - c->roff;
    if (n > len) {
        n = len;
    }
    memcpy(data, c->rbuf + c->roff, n);
    c->roff += n;
    return (long)n;
}

int sc_plat_conn_wait(sc_plat_conn_t *c, bool want_read, bool want_write,
                      uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (want_write && c->w.state != OP_PENDING) {
            return 1;
        }
        /* Data, or an error the next read reports. */
        if (want_read && fill(c) != 0) {
            return 1;
        }
        if (!want_read && !want_write) {
            return 1;
        }
        uint64_t now = now_ms();
        if (now >= deadline) {
            return 0;
        }
        int rc = collect(c, (DWORD)(deadline - now));
        if (rc < 0) {
            return rc;
        }
    }
}

/* Cancels an operation and waits for its packet: only then is the kernel
 * done with its buffer. False if it never came (then the buffers must not
 * be freed). */
static bool cancel(sc_plat_conn_t *c, op_t *op)
{
    CancelIoEx(c->pipe, &op->ov);
    for (int i = 0; i < 50 && op->state == OP_PENDING; i++) {
        if (collect(c, 100) < 0) {
            break;
        }
    }
    return op->state != OP_PENDING;
}

void sc_plat_conn_close(sc_plat_conn_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->port != NULL) {
        /* A socket would still deliver what its buffer took: give the
         * last write a moment to drain before giving up on it. */
        uint64_t deadline = now_ms() + 100;
        while (c->w.state == OP_PENDING && now_ms() < deadline &&
               collect(c, 10) >= 0) {
        }
        bool released = cancel(c, &c->w);
        released = cancel(c, &c->r) && released;
        if (!released) {
            /* The kernel may still write into rbuf: leak the connection
             * rather than let it write into freed memory. */
            CloseHandle(c->pipe);
            return;
        }
    }
    CloseHandle(c->pipe);
    if (c->port != NULL) {
        CloseHandle(c->port);
    }
    free(c);
}

/* Shared by the src/win32/ files only. docs/windows.md describes the
 * design: election mutex, rendezvous, per-owner pipe names. */
#ifndef SIDECAR_WIN32_INTERNAL_H
#define SIDECAR_WIN32_INTERNAL_H

#include "endpoint.h" /* SC_ENDPOINT_MAX */
#include "platform.h"
#include "rendezvous.h"

#include <windows.h>

/* Win32 error code -> libuv error. */
int win32_error(DWORD err);

/* UTF-8 -> UTF-16 into `out` (count wide characters). UV_ENAMETOOLONG when
 * it does not fit, UV_EINVAL for invalid UTF-8. */
int win32_widen(const char *in, WCHAR *out, size_t count);

/* ---- identity ------------------------------------------------------------ */

/* The user SID of this process's primary token (never an impersonation
 * token), computed once. NULL if the token cannot be read. */
PSID win32_self_sid(void);

/* The user SID of `process`'s token, malloc'ed (free()), or NULL. */
PSID win32_process_sid(HANDLE process, bool *privileged);

/* A security descriptor (LocalFree) whose DACL admits SYSTEM and this
 * process's user only; with `deny_network`, network logons are denied
 * first (what PIPE_REJECT_REMOTE_CLIENTS would do, see win32_listen.c). */
PSECURITY_DESCRIPTOR win32_private_sd(bool deny_network);

/* Access masks for the configured identities of win32_shared_sd. */
/* A pipe client: read, write data and attributes; never
 * FILE_CREATE_PIPE_INSTANCE (= FILE_APPEND_DATA), which would let it serve
 * our pipe's name. */
#define WIN32_PIPE_CLIENT_ACCESS                                               \
    (FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES)
#define WIN32_MAPPING_READ_ACCESS (STANDARD_RIGHTS_READ | SECTION_MAP_READ)

/* win32_private_sd plus an allow entry of `access` for each of the `n`
 * SID strings (UV_EINVAL when one is not a SID). */
int win32_shared_sd(bool deny_network, const char *const *sids, size_t n,
                    DWORD access, PSECURITY_DESCRIPTOR *out);

/* Replaces the DACL of a kernel object we own (a pipe, a mapping) with the
 * one of `sd`, protected from inheritance. */
int win32_set_dacl(HANDLE object, PSECURITY_DESCRIPTOR sd);

/* Named kernel objects of ours, created with win32_private_sd(false) (or
 * opened when they exist: GetLastError() is then ERROR_ALREADY_EXISTS).
 * NULL on failure, with GetLastError() set; never created with a default,
 * more open, descriptor. Events are manual-reset and start unset; mappings
 * are backed by the paging file. */
HANDLE win32_private_mutex(const WCHAR *name);
HANDLE win32_private_event(const WCHAR *name);
HANDLE win32_private_mapping(const WCHAR *name, uint64_t size);

/* ---- names ------------------------------------------------------------------
 *
 * An endpoint string is "\\.\pipe\<base>". Its kernel objects are named
 * after <base> in the session's Local\ namespace; the pipe that actually
 * listens is "\\.\pipe\<base>-<owner pid>[-<n>]" (see win32_election.c). */

#define WIN32_NAME_MAX 300

/* Copies <base> out of an endpoint string. UV_EINVAL when the endpoint is
 * not a pipe name. */
int win32_pipe_base(const char *endpoint, char *base, size_t size);

/* L"Local\<base><suffix>". */
int win32_object_name(const char *endpoint, const char *suffix, WCHAR *out,
                      size_t count);

/* ---- election and rendezvous (win32_election.c) ----------------------------
 *
 * Ownership of an endpoint is decided by its named mutex (held for the
 * owner's lifetime; Windows releases it when the owner dies). The owner
 * publishes where it listens in a small named mapping, the rendezvous, that
 * clients read before connecting. */

/* The record itself (sc_rendezvous_t), its states and the pipe names it
 * leads to: src/common/rendezvous.h. */

typedef struct win32_claim win32_claim_t;

/* Wins the election of `endpoint`, waiting at most `wait_ms`. With
 * `signal_first`, that event is set in the same step as the wait starts
 * (SignalObjectAndWait: a daemon taking over from its spawner, who releases
 * on that signal). UV_EADDRINUSE when another live owner keeps it, or this
 * process holds it already. An abandoned mutex (dead owner) is won. */
int win32_claim(const char *endpoint, uint32_t wait_ms, HANDLE signal_first,
                win32_claim_t **out);

/* Opens (creating if needed) the rendezvous of `endpoint` without claiming:
 * a daemon does it before taking over, so that the mapping outlives its
 * spawner's handle. */
int win32_rendezvous_hold(const char *endpoint, HANDLE *mapping);

/* Publishes this owner's state in the rendezvous. `e` is an owner's
 * record (sc_rendezvous_pack accepts it); any other leaves it unchanged. */
void win32_claim_publish(win32_claim_t *c, const sc_rendezvous_t *e);

/* The mutex handle (the value sc_plat_bind_handoff hands out). */
HANDLE win32_claim_mutex(const win32_claim_t *c);
HANDLE win32_claim_rendezvous(const win32_claim_t *c);
const char *win32_claim_endpoint(const win32_claim_t *c);

/* Clears the rendezvous (unless `keep_entry`), releases the mutex and frees
 * the claim. Must run on the thread that claimed. */
void win32_claim_release(win32_claim_t *c, bool keep_entry);

/* Reads the rendezvous (sc_rendezvous_parse): UV_ENOENT when there is none
 * (nobody owns), UV_EPROTO when the record is damaged. */
int win32_rendezvous_read(const char *endpoint, sc_rendezvous_t *e);

/* sc_plat_spawn_detached with a handover (win32_handoff.c): waits until
 * the daemon is ready to take the election over, exits, or 5 s pass. */
void win32_handoff_await(int64_t pass_handle, HANDLE daemon,
                         uint32_t daemon_pid);

/* ---- processes ----------------------------------------------------------- */

/* True while `pid` runs (OpenProcess + exit code). */
bool win32_process_running(uint32_t pid);

#endif

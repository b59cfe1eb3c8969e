/* The rendezvous record of a Windows endpoint (docs/windows.md, "Endpoints:
 * election, rendezvous, per-owner pipes"): one 64-bit word in the mapping
 * "Local\<base>-rendezvous" that the endpoint's owner writes and every
 * client reads before connecting. It says who owns the endpoint, whether
 * that owner listens yet, and so which pipe to open.
 *
 *   bits  0..31  owner pid
 *   bits 32..39  state (sc_rendezvous_state_t)
 *   bits 40..63  generation: the owner's listen count for the endpoint
 *
 * Pure logic, no platform header: src/win32 maps the word and calls these,
 * and the fuzz target tests/fuzz/fuzz_rendezvous.c drives them with any
 * 64 bits. */
#ifndef SIDECAR_RENDEZVOUS_H
#define SIDECAR_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum sc_rendezvous_state {
    SC_RENDEZVOUS_NONE = 0,      /* nobody owns the endpoint */
    SC_RENDEZVOUS_STARTING = 1,  /* elected; the pipe is not listening yet */
    SC_RENDEZVOUS_LISTENING = 2, /* the pipe of `pid` (and `generation`) */
} sc_rendezvous_state_t;

/* The largest generation the record holds (24 bits). */
#define SC_RENDEZVOUS_GENERATION_MAX 0xffffffu
/* Windows limits a pipe name to 256 characters. */
#define SC_RENDEZVOUS_PIPE_NAME_MAX 256

typedef struct sc_rendezvous {
    uint32_t pid;
    sc_rendezvous_state_t state;
    uint32_t generation;
} sc_rendezvous_t;

/* The word for `r`. UV_EINVAL (and `*word` untouched) when `r` is not a
 * record a reader would accept: an owner state with pid 0, an unknown
 * state, a generation above SC_RENDEZVOUS_GENERATION_MAX, or NONE with
 * anything else set (NONE is written as the word 0). */
int sc_rendezvous_pack(const sc_rendezvous_t *r, uint64_t *word);

/* Reads a word. 0: an owner (STARTING or LISTENING, pid nonzero) in `out`;
 * UV_ENOENT: the word 0, nobody owns the endpoint; UV_EPROTO: anything else
 * (an unknown state, an owner without a pid, NONE with bits set), which no
 * writer produces: the record is damaged, and a client must not wait on it
 * nor open a pipe it names. `out` is written only on 0. */
int sc_rendezvous_parse(uint64_t word, sc_rendezvous_t *out);

/* The pipe an owner listens on: "<endpoint>-<pid>" for generation 0,
 * "<endpoint>-<pid>-<generation>" after. UV_ENAMETOOLONG when it does not
 * fit `size` or is longer than SC_RENDEZVOUS_PIPE_NAME_MAX; UV_EINVAL when
 * `r` is not an owner. `out` is always NUL-terminated when size > 0. */
int sc_rendezvous_pipe_name(const char *endpoint, const sc_rendezvous_t *r,
                            char *out, size_t size);

#endif

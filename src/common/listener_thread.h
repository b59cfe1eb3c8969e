/* Thread mode: the master process runs the sidecar (daemon.h) on a thread of
 * its own, with its own libuv loop. */
#ifndef SIDECAR_LISTENER_THREAD_H
#define SIDECAR_LISTENER_THREAD_H

#include "daemon.h"

typedef struct sc_listener_thread sc_listener_thread_t;

/* Starts the thread. Without a listen handle it waits until the thread
 * listens (or failed: the error is returned and nothing is left running).
 * With one (a socket the caller bound and listens on, which it hands over
 * even on failure) it returns at once: connections queue on the socket
 * while the thread starts, so a promoted worker's request does not wait
 * for the delivery machinery to come up. */
int sc_listener_thread_start(const sc_daemon_options_t *o,
                             sc_listener_thread_t **out);

/* 0 while the thread is starting or serving; the error when its start
 * failed (stop it to reclaim it). Never waits. */
int sc_listener_thread_status(const sc_listener_thread_t *t);

/* Waits until the thread has finished starting; returns its status. Call
 * before fork(): a child must not inherit libcurl's or OpenSSL's global
 * initialization half done by the thread (a once-guard stuck "running"
 * would hang the child the day it is promoted). */
int sc_listener_thread_wait_started(sc_listener_thread_t *t);

/* Asks the daemon to stop (final flush included), waits for the thread at
 * most timeout_ms, and frees everything if it ended. Returns 0 or
 * UV_ETIMEDOUT (the thread is then left to finish on its own). */
int sc_listener_thread_stop(sc_listener_thread_t *t, uint32_t timeout_ms);

/* In the child of fork(): the thread does not exist here. Closes the
 * inherited listening socket, so that connections to a dead master's name
 * fail fast instead of queueing on a socket nobody accepts on, and the
 * server's end of every accepted connection, so that a worker's connection
 * ends when the master does. The memory is abandoned (it is the parent's
 * copy). */
void sc_listener_thread_abandon_in_child(sc_listener_thread_t *t);

#endif

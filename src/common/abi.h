/* Versioned public option structs (docs/install.md, "ABI"): which layouts
 * of sc_config_t and sc_client_options_t this library accepts. */
#ifndef SIDECAR_ABI_H
#define SIDECAR_ABI_H

#include "sidecar.h"

#include <stddef.h>

/* The size of sc_config_t in the 0.1 layout (struct_size 0 means it). */
#define SC_CONFIG_SIZE_0_1 offsetof(sc_config_t, rss_cap_bytes)

/* Whether the caller's sc_config_t holds `field` (its struct_size covers
 * it). Read or write a field added after 0.1 only when this holds. */
#define SC_CONFIG_HAS(cfg, field)                                              \
    ((size_t)((cfg)->struct_size == 0 ? SC_CONFIG_SIZE_0_1                     \
                                      : (cfg)->struct_size) >=                 \
     offsetof(sc_config_t, field) + sizeof((cfg)->field))

/* 0 when the caller's struct_size names a layout this library knows (0 is
 * the 0.1 layout), UV_EINVAL otherwise (logged once per call). Call at every
 * entry point that receives one of these structs, before reading it. */
int sc_abi_config_check(const sc_config_t *cfg);
int sc_abi_client_options_check(const sc_client_options_t *options);

/* Copies a caller's checked sc_config_t into the library's own layout: the
 * fields its layout has, defaults for the fields it lacks. Never reads past
 * the caller's struct. */
void sc_abi_config_copy(sc_config_t *dst, const sc_config_t *src);

#endif

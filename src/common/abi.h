/* Versioned public option structs (docs/install.md, "ABI"): which layouts
 * of sc_config_t and sc_client_options_t this library accepts. */
#ifndef SIDECAR_ABI_H
#define SIDECAR_ABI_H

#include "sidecar.h"

/* 0 when the caller's struct_size names a layout this library knows (0 is
 * the 0.1 layout), UV_EINVAL otherwise (logged once per call). Call at every
 * entry point that receives one of these structs, before reading it. */
int sc_abi_config_check(const sc_config_t *cfg);
int sc_abi_client_options_check(const sc_client_options_t *options);

#endif

/* sidecar: hand telemetry actions from many processes to one helper that
 * delivers them to a Datadog-compatible agent.
 *
 * This header is the whole public C API. */
#ifndef SIDECAR_H
#define SIDECAR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this build, "MAJOR.MINOR.PATCH". */
const char *sc_version(void);

#ifdef __cplusplus
}
#endif

#endif

# nanopb code generation from proto/ at build time; generated files live in the
# build tree only (never committed).
set(SIDECAR_PROTO ${PROJECT_SOURCE_DIR}/proto/sidecar.proto)
set(SIDECAR_PROTO_OPTIONS ${PROJECT_SOURCE_DIR}/proto/sidecar.options)
set(SIDECAR_GEN_DIR ${PROJECT_BINARY_DIR}/generated)

# sidecar_generate_proto(): the rule producing sidecar.pb.[ch]. Called from the
# directory whose target compiles the result (CMake scopes custom command
# outputs to their directory).
function(sidecar_generate_proto)
  add_custom_command(
    OUTPUT ${SIDECAR_GEN_DIR}/sidecar.pb.c ${SIDECAR_GEN_DIR}/sidecar.pb.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${SIDECAR_GEN_DIR}
    COMMAND ${NANOPB_GENERATOR} -q -I ${PROJECT_SOURCE_DIR}/proto
            -f ${SIDECAR_PROTO_OPTIONS} -D ${SIDECAR_GEN_DIR} ${SIDECAR_PROTO}
    DEPENDS ${SIDECAR_PROTO} ${SIDECAR_PROTO_OPTIONS}
    COMMENT "nanopb: generating sidecar.pb.[ch]"
    VERBATIM)
endfunction()

# Compiler warnings for project targets (never for generated or third-party code).
set(SIDECAR_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
    -Wmissing-prototypes -Wold-style-definition -Wpointer-arith -Wcast-qual
    -Wvla -Wnull-dereference -Wdouble-promotion -Wundef)
if(SIDECAR_WERROR)
  list(APPEND SIDECAR_WARNINGS -Werror)
endif()

# sidecar_warnings(<target>): apply the project's warning set to a target.
function(sidecar_warnings target)
  target_compile_options(${target} PRIVATE ${SIDECAR_WARNINGS})
endfunction()

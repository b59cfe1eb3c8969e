# CMake toolchain: cross-compile for 64-bit Windows with Debian's mingw-w64 and
# run the results under Wine (docs/windows.md).
#
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DSIDECAR_WIN_DEPS_PREFIX=<prefix printed by ci/windows-deps.sh> ...
#
# ci/windows-deps.sh also uses this file (without a prefix) to build the
# dependencies themselves, and hashes it into its cache key: a change here
# rebuilds them.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(SIDECAR_MINGW_TRIPLET x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${SIDECAR_MINGW_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${SIDECAR_MINGW_TRIPLET}-g++)
set(CMAKE_RC_COMPILER ${SIDECAR_MINGW_TRIPLET}-windres)

# Where the cross-built libuv, curl, nanopb and cmocka live. try_compile()
# projects re-read this file without the caller's cache, hence the
# environment fallback and the forwarding below.
if(NOT DEFINED SIDECAR_WIN_DEPS_PREFIX AND DEFINED ENV{SIDECAR_WIN_DEPS_PREFIX})
  set(SIDECAR_WIN_DEPS_PREFIX "$ENV{SIDECAR_WIN_DEPS_PREFIX}")
endif()
set(SIDECAR_WIN_DEPS_PREFIX "${SIDECAR_WIN_DEPS_PREFIX}" CACHE PATH
    "Install prefix of the Windows dependencies built by ci/windows-deps.sh")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SIDECAR_WIN_DEPS_PREFIX)

# A plain CMAKE_PREFIX_PATH is not enough once the find root is restricted:
# the prefix itself has to be a find root.
set(CMAKE_FIND_ROOT_PATH /usr/${SIDECAR_MINGW_TRIPLET})
if(SIDECAR_WIN_DEPS_PREFIX)
  list(APPEND CMAKE_FIND_ROOT_PATH ${SIDECAR_WIN_DEPS_PREFIX})
endif()
# Build tools (nanopb generator, python) come from the host; libraries,
# headers and CMake packages only from the Windows roots, never from Linux.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# CTest prepends this to every test whose command is a build target.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/wine)

# Executables carry libgcc and winpthread inside, so Wine (or a bare Windows
# machine) runs them without the mingw runtime DLLs on its PATH.
set(CMAKE_EXE_LINKER_FLAGS_INIT -static)

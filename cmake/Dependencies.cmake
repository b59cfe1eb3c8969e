# The libraries the build links (libuv, libcurl, cJSON, nanopb; cmocka for the
# tests; README.md, "Building by hand"). On Linux they come from Debian's -dev
# packages; for the Windows cross build from the prefix that ci/windows-deps.sh
# fills (found through CMAKE_FIND_ROOT_PATH, see cmake/mingw-w64.cmake).
find_package(Threads REQUIRED)

if(WIN32)
  find_package(libuv CONFIG REQUIRED)
  if(TARGET libuv::uv_a)
    add_library(sidecar_dep_uv ALIAS libuv::uv_a)
  else()
    add_library(sidecar_dep_uv ALIAS uv_a)
  endif()
  find_package(CURL CONFIG REQUIRED)
  add_library(sidecar_dep_curl ALIAS CURL::libcurl)
  # mingw's own C99 printf family (%zu, %lld, %j), not msvcrt's. GCC checks
  # format(printf) attributes against msvcrt's dialect on this target, so
  # headers spell the archetype SC_PRINTF_ARCHETYPE (printf elsewhere).
  add_compile_definitions(__USE_MINGW_ANSI_STDIO=1 SC_PRINTF_ARCHETYPE=gnu_printf)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(SIDECAR_LIBUV REQUIRED IMPORTED_TARGET libuv>=1.44)
  pkg_check_modules(SIDECAR_LIBCURL REQUIRED IMPORTED_TARGET libcurl>=7.88)
  add_library(sidecar_dep_uv ALIAS PkgConfig::SIDECAR_LIBUV)
  add_library(sidecar_dep_curl ALIAS PkgConfig::SIDECAR_LIBCURL)
endif()

# cJSON reads the agent's answers (src/common/agent_info.c): Debian's
# libcjson-dev; for Windows, cross-built by ci/windows-deps.sh (static).
if(WIN32)
  find_path(CJSON_INCLUDE_DIR cjson/cJSON.h REQUIRED)
  find_library(CJSON_LIBRARY NAMES cjson REQUIRED)
  # Imported, as the other dependencies are: the static library's export
  # names it (as the Linux build names PkgConfig::SIDECAR_LIBCJSON).
  add_library(sidecar_dep_cjson INTERFACE IMPORTED)
  set_target_properties(sidecar_dep_cjson PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CJSON_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${CJSON_LIBRARY}"
    INTERFACE_COMPILE_DEFINITIONS CJSON_HIDE_SYMBOLS)
else()
  pkg_check_modules(SIDECAR_LIBCJSON REQUIRED IMPORTED_TARGET libcjson>=1.7.15)
  add_library(sidecar_dep_cjson ALIAS PkgConfig::SIDECAR_LIBCJSON)
endif()

find_package(nanopb CONFIG REQUIRED)
add_library(sidecar_dep_nanopb ALIAS nanopb::protobuf-nanopb-static)

if(SIDECAR_BUILD_TESTS)
  # cmocka's CMake config on mingw points at an import library that does not
  # exist; the static library is found directly instead.
  find_path(CMOCKA_INCLUDE_DIR cmocka.h REQUIRED)
  find_library(CMOCKA_LIBRARY NAMES cmocka-static cmocka REQUIRED)
  add_library(sidecar_dep_cmocka INTERFACE)
  target_include_directories(sidecar_dep_cmocka INTERFACE ${CMOCKA_INCLUDE_DIR})
  target_link_libraries(sidecar_dep_cmocka INTERFACE ${CMOCKA_LIBRARY})
endif()

# Host tools used at build and test time.
find_program(NANOPB_GENERATOR nanopb_generator.py nanopb_generator REQUIRED)
find_program(PROTOC protoc)

# Debian's python3 (with python3-protobuf / python3-msgpack from apt), not
# whatever python3 comes first on PATH: test helpers import Debian packages.
find_program(SIDECAR_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SIDECAR_PYTHON)
  find_program(SIDECAR_PYTHON python3)
endif()

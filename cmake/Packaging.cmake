# `cpack -G DEB` (docs/install.md, "Packages"): one Debian package with the
# daemon, both libraries, the header, sidecar.pc, the CMake package, the
# docs and the systemd unit example. Configure with
# -DCMAKE_INSTALL_PREFIX=/usr for Debian's multiarch library directory.
include(GNUInstallDirs)

install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
  ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/install.md
  ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/settings.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT daemon)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/sidecar.service
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT daemon)

set(CPACK_PACKAGE_NAME sidecar)
set(CPACK_PACKAGE_VENDOR "sidecar contributors")
set(CPACK_PACKAGE_CONTACT "sidecar maintainers <sidecar@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "IPC runtime handing telemetry from PHP processes to one delivery helper")
set(CPACK_PACKAGE_DESCRIPTION
  "Short-lived request-serving processes (PHP-FPM workers) hand telemetry
actions over Unix sockets to one long-lived helper, the sidecar, which
aggregates them and delivers them over HTTP to a Datadog-compatible agent.
Contains the sidecar daemon, libsidecar (shared and static), its header,
pkg-config and CMake metadata.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_LICENSE Apache-2.0)
# Run-time libraries from dpkg-shlibdeps; building against the static
# library or through sidecar.pc also needs the -dev packages (suggested).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libuv1-dev, libcurl4-openssl-dev, libnanopb-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
include(CPack)

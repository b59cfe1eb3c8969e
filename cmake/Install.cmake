# What `cmake --install` lays out (docs/install.md): the daemon, both
# libraries, the header, sidecar.pc and the CMake package with the exported
# targets sidecar::sidecar (shared) and sidecar::sidecar_static. Every path
# in the installed files is relative to the install's own location, so a
# prefix given only at install time (--prefix) or a moved tree still works.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SIDECAR_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sidecar)

install(TARGETS sidecar_cli
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT daemon)
install(TARGETS sidecar_shared EXPORT sidecarTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT library
    NAMELINK_COMPONENT development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT library
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS sidecar_static EXPORT sidecarStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/sidecar.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development)

install(EXPORT sidecarTargets NAMESPACE sidecar::
  DESTINATION ${SIDECAR_CMAKE_DIR} COMPONENT development)
install(EXPORT sidecarStaticTargets NAMESPACE sidecar::
  DESTINATION ${SIDECAR_CMAKE_DIR} COMPONENT development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sidecarConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sidecarConfig.cmake
  INSTALL_DESTINATION ${SIDECAR_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: every minor version may change the ABI (docs/install.md, "ABI").
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SIDECAR_COMPAT SameMinorVersion)
else()
  set(SIDECAR_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sidecarConfigVersion.cmake
  COMPATIBILITY ${SIDECAR_COMPAT})
install(FILES ${PROJECT_BINARY_DIR}/sidecarConfig.cmake
  ${PROJECT_BINARY_DIR}/sidecarConfigVersion.cmake
  DESTINATION ${SIDECAR_CMAKE_DIR} COMPONENT development)

# sidecar.pc finds its prefix from ${pcfiledir}; an absolute LIBDIR (rare)
# keeps the configured prefix.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SIDECAR_PC_TO_PREFIX "")
  file(RELATIVE_PATH SIDECAR_PC_TO_PREFIX
    ${CMAKE_INSTALL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
else()
  file(RELATIVE_PATH SIDECAR_PC_TO_PREFIX
    /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
endif()
string(REGEX REPLACE "/$" "" SIDECAR_PC_TO_PREFIX "${SIDECAR_PC_TO_PREFIX}")
set(SIDECAR_PC_DL "")
if(CMAKE_DL_LIBS)
  set(SIDECAR_PC_DL "-l${CMAKE_DL_LIBS}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/sidecar.pc.in
  ${PROJECT_BINARY_DIR}/sidecar.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sidecar.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)

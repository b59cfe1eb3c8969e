dnl The sidecar PHP extension: a thin binding over libsidecar (include/sidecar.h).
dnl
dnl   phpize8.2 && ./configure --with-php-config=php-config8.2 --with-sidecar && make
dnl
dnl libsidecar is found with pkg-config (sidecar.pc):
dnl   --with-sidecar          pkg-config's search path (PKG_CONFIG_PATH)
dnl   --with-sidecar=PREFIX   the sidecar.pc of an install in PREFIX (any
dnl                           libdir: lib, lib64, lib/<multiarch>); without
dnl                           one, PREFIX/include and PREFIX's libdir
dnl   --with-sidecar-includedir=DIR --with-sidecar-libdir=DIR
dnl                           a source tree's include/ and a build tree's
dnl                           src/ instead (no pkg-config)
dnl The library directory is also the run path of sidecar.so.

PHP_ARG_WITH([sidecar],
  [for sidecar support],
  [AS_HELP_STRING([--with-sidecar[=PREFIX]],
    [Include sidecar support; PREFIX is where libsidecar is installed
     (default: found with pkg-config)])])

PHP_ARG_WITH([sidecar-includedir], [for the sidecar.h directory],
  [AS_HELP_STRING([--with-sidecar-includedir=DIR],
    [Directory holding sidecar.h (skips pkg-config)])], [no], [no])

PHP_ARG_WITH([sidecar-libdir], [for the libsidecar directory],
  [AS_HELP_STRING([--with-sidecar-libdir=DIR],
    [Directory holding libsidecar.so (skips pkg-config)])], [no], [no])

if test "$PHP_SIDECAR" != "no"; then
  SIDECAR_INCDIR=
  SIDECAR_LIBDIR=
  if test "$PHP_SIDECAR_INCLUDEDIR" != "no" || test "$PHP_SIDECAR_LIBDIR" != "no"; then
    if test "$PHP_SIDECAR_INCLUDEDIR" = "no" || test "$PHP_SIDECAR_LIBDIR" = "no"; then
      AC_MSG_ERROR([--with-sidecar-includedir and --with-sidecar-libdir go together])
    fi
    SIDECAR_INCDIR=$PHP_SIDECAR_INCLUDEDIR
    SIDECAR_LIBDIR=$PHP_SIDECAR_LIBDIR
  else
    AC_PATH_PROG(SIDECAR_PKG_CONFIG, pkg-config, no)
    SIDECAR_PC_PATH=
    if test "$PHP_SIDECAR" != "yes"; then
      for d in "$PHP_SIDECAR"/lib/pkgconfig "$PHP_SIDECAR"/lib64/pkgconfig "$PHP_SIDECAR"/lib/*/pkgconfig; do
        if test -r "$d/sidecar.pc"; then
          SIDECAR_PC_PATH=$d
          break
        fi
      done
    fi
    AC_MSG_CHECKING([for sidecar with pkg-config])
    if test "$SIDECAR_PKG_CONFIG" != "no" &&
       { test -n "$SIDECAR_PC_PATH" || test "$PHP_SIDECAR" = "yes"; } &&
       PKG_CONFIG_PATH="$SIDECAR_PC_PATH${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
         $SIDECAR_PKG_CONFIG --exists sidecar; then
      SIDECAR_INCDIR=`PKG_CONFIG_PATH="$SIDECAR_PC_PATH${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" $SIDECAR_PKG_CONFIG --variable=includedir sidecar`
      SIDECAR_LIBDIR=`PKG_CONFIG_PATH="$SIDECAR_PC_PATH${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" $SIDECAR_PKG_CONFIG --variable=libdir sidecar`
      SIDECAR_PC_VERSION=`PKG_CONFIG_PATH="$SIDECAR_PC_PATH${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" $SIDECAR_PKG_CONFIG --modversion sidecar`
      AC_MSG_RESULT([$SIDECAR_PC_VERSION in $SIDECAR_LIBDIR])
    elif test "$PHP_SIDECAR" != "yes"; then
      AC_MSG_RESULT([no sidecar.pc; trying $PHP_SIDECAR])
      SIDECAR_INCDIR=$PHP_SIDECAR/include
      for d in "$PHP_SIDECAR"/lib "$PHP_SIDECAR"/lib64 "$PHP_SIDECAR"/lib/*; do
        if test -r "$d/libsidecar.so"; then
          SIDECAR_LIBDIR=$d
          break
        fi
      done
    else
      AC_MSG_ERROR([sidecar.pc not found: install sidecar, set PKG_CONFIG_PATH, or pass --with-sidecar=PREFIX])
    fi
  fi

  AC_MSG_CHECKING([for sidecar.h])
  if test -r "$SIDECAR_INCDIR/sidecar.h"; then
    AC_MSG_RESULT([$SIDECAR_INCDIR])
  else
    AC_MSG_ERROR([sidecar.h not found in $SIDECAR_INCDIR])
  fi

  PHP_CHECK_LIBRARY(sidecar, sc_init,
    [
      PHP_ADD_INCLUDE($SIDECAR_INCDIR)
      PHP_ADD_LIBRARY_WITH_PATH(sidecar, $SIDECAR_LIBDIR, SIDECAR_SHARED_LIBADD)
    ],
    [AC_MSG_ERROR([libsidecar not found in $SIDECAR_LIBDIR (or sc_init missing)])],
    [-L$SIDECAR_LIBDIR])

  PHP_SUBST(SIDECAR_SHARED_LIBADD)
  PHP_NEW_EXTENSION(sidecar, sidecar.c sidecar_functions.c sidecar_telemetry.c, $ext_shared)
fi

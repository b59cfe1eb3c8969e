dnl The sidecar PHP extension: a thin binding over libsidecar (include/sidecar.h).
dnl
dnl   phpize8.2 && ./configure --with-php-config=php-config8.2 \
dnl       --with-sidecar[=PREFIX] [--with-sidecar-includedir=DIR] \
dnl       [--with-sidecar-libdir=DIR] && make
dnl
dnl PREFIX holds include/sidecar.h and lib/libsidecar.so (an install); the two
dnl directory options point at a source tree's include/ and a build tree's
dnl src/ instead. The library directory is also the run path of sidecar.so.

PHP_ARG_WITH([sidecar],
  [for sidecar support],
  [AS_HELP_STRING([--with-sidecar[=PREFIX]],
    [Include sidecar support; PREFIX is where libsidecar is installed])])

PHP_ARG_WITH([sidecar-includedir], [for the sidecar.h directory],
  [AS_HELP_STRING([--with-sidecar-includedir=DIR],
    [Directory holding sidecar.h (default PREFIX/include)])], [no], [no])

PHP_ARG_WITH([sidecar-libdir], [for the libsidecar directory],
  [AS_HELP_STRING([--with-sidecar-libdir=DIR],
    [Directory holding libsidecar.so (default PREFIX/lib)])], [no], [no])

if test "$PHP_SIDECAR" != "no"; then
  SIDECAR_PREFIX=/usr/local
  if test "$PHP_SIDECAR" != "yes"; then
    SIDECAR_PREFIX=$PHP_SIDECAR
  fi
  SIDECAR_INCDIR=$SIDECAR_PREFIX/include
  if test "$PHP_SIDECAR_INCLUDEDIR" != "no"; then
    SIDECAR_INCDIR=$PHP_SIDECAR_INCLUDEDIR
  fi
  SIDECAR_LIBDIR=$SIDECAR_PREFIX/lib
  if test "$PHP_SIDECAR_LIBDIR" != "no"; then
    SIDECAR_LIBDIR=$PHP_SIDECAR_LIBDIR
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
  PHP_NEW_EXTENSION(sidecar, sidecar.c sidecar_functions.c, $ext_shared)
fi

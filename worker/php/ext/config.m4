dnl drover's PHP extension: the PHP SDK's per-request path in C (README.md in this folder).
PHP_ARG_ENABLE([drover],
  [whether to enable drover's PHP extension],
  [AS_HELP_STRING([--enable-drover], [Enable drover's PHP extension])],
  [yes])

if test "$PHP_DROVER" != "no"; then
  PHP_NEW_EXTENSION(drover, drover.c, $ext_shared,, -Wall -Wextra -Wno-unused-parameter -O2)
fi

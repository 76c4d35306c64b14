#!/bin/sh
# The upstream redis image's entrypoint, in short (setpriv instead of gosu: util-linux is in
# every Debian root).
set -e
# "-flag ..." or "x.conf ...": arguments for redis-server
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
  # no config file given (or one without protected-mode): other containers must reach it
  if [ ! -f "${2:-}" ] || ! grep -q '^protected-mode' "$2"; then
    set -- "$@" --protected-mode no
  fi
  if [ "$(id -u)" = "0" ]; then
    find . \! -user redis -exec chown redis '{}' +
    umask 0077
    exec setpriv --reuid redis --regid redis --init-groups "$@"
  fi
fi
exec "$@"

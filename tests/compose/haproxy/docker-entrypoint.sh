#!/bin/sh
# The upstream haproxy image's entrypoint.
set -e
# "-f ..." or "--option": arguments for haproxy
if [ "${1#-}" != "$1" ]; then
  set -- haproxy "$@"
fi
if [ "$1" = "haproxy" ]; then
  shift
  # -W master-worker (reload with SIGUSR2), -db stay in the foreground
  set -- haproxy -W -db "$@"
fi
exec "$@"

#!/bin/sh
# Debian's PostgreSQL server binaries (initdb, pg_ctl) for the multi-worker tuning test, which starts a
# throwaway server on loopback. Installed from Debian packages on first use; needs root (or sudo without a
# password). Nothing is started here and no cluster is created.
set -e
found() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && return 0; done
  return 1
}
found && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
  echo "PostgreSQL is missing and this user cannot install Debian packages: run 'apt-get install postgresql' as root" >&2
  exit 1
fi
echo "installing Debian's postgresql for the multi-worker tuning test (about 30 s)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends postgresql >/dev/null; }
found

#!/bin/sh
# Debian's chromium (headless) renders the HTML reports in the test suite. Installed from Debian packages
# on first use; needs root (or sudo without a password).
set -e
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
  echo "chromium is missing and this user cannot install Debian packages: run 'apt-get install chromium' as root" >&2
  exit 1
fi
echo "installing Debian's chromium for the HTML report tests (about 30 s)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }
command -v chromium >/dev/null

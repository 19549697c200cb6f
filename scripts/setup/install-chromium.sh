#!/bin/sh
# Debian's chromium for the browser tests: Playwright drives /usr/bin/chromium, since
# `playwright install` cannot download a browser of its own here; a CJK font so that the
# Chinese pages render (and their screenshots read) as a shopper sees them. Run by `make test`.
set -eu
PACKAGES="chromium fonts-wqy-microhei"
if [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get; install Chromium at /usr/bin/chromium by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: apt-get install $PACKAGES (for the browser tests)"
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null \
    || { $SUDO apt-get update -q >/dev/null \
         && $SUDO apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null; }
/usr/bin/chromium --version

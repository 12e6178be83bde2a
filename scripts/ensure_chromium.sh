#!/bin/sh
# Make sure a Chromium for tests/test_browser.py exists: Debian's package at /usr/bin/chromium
# (or chromium on the PATH, or the file named by NNLIB_CHROMIUM, which the test uses first).
# Playwright's own browser download is not reachable from our machines, so the test
# drives the distribution's package instead. This script never fails: without Chromium
# the browser test skips itself (and fails only when CI is set).
set -u

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "ensure_chromium: $CHROMIUM is present."
    exit 0
fi
if [ -n "${NNLIB_CHROMIUM:-}" ] && [ -x "$NNLIB_CHROMIUM" ]; then
    echo "ensure_chromium: using NNLIB_CHROMIUM=$NNLIB_CHROMIUM."
    exit 0
fi
if command -v chromium >/dev/null 2>&1; then
    echo "ensure_chromium: $(command -v chromium) is present."
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: installing Debian's chromium package with apt-get (quiet)..."
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
        echo "ensure_chromium: installed $CHROMIUM."
    else
        echo "ensure_chromium: apt-get could not install chromium; the browser test will be skipped."
    fi
    exit 0
fi

echo "ensure_chromium: $CHROMIUM is missing; install it as root with 'apt-get install chromium' (Debian/Ubuntu) to run tests/test_browser.py, which is skipped until then."
exit 0

#!/bin/sh
# Fetch puppeteer-core (drives the machine's Chromium over the DevTools
# protocol; it downloads no browser) into $WHARF_BUILD_DIR/npm-puppeteer
# once; integration/console_browser uses it from there.
set -eu
: "${WHARF_BUILD_DIR:?WHARF_BUILD_DIR must be set}"
dest="$WHARF_BUILD_DIR/npm-puppeteer"
if [ -f "$dest/node_modules/puppeteer-core/package.json" ]; then
    exit 0
fi
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error puppeteer-core@24
test -f "$dest/node_modules/puppeteer-core/package.json"

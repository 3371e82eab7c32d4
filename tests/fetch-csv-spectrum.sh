#!/bin/sh
# Fetch the csv-spectrum corpus (CSV edge cases with their expected JSON)
# into $WHARF_BUILD_DIR/npm once; unit/test_csv_spectrum reads it from there.
set -eu
: "${WHARF_BUILD_DIR:?WHARF_BUILD_DIR must be set}"
dest="$WHARF_BUILD_DIR/npm"
if [ -d "$dest/node_modules/csv-spectrum/csvs" ]; then
    exit 0
fi
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error csv-spectrum
test -d "$dest/node_modules/csv-spectrum/csvs"

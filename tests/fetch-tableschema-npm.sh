#!/bin/sh
# Install the npm tableschema package (frictionlessdata/tableschema-js), the
# second Table Schema validator of integration/tableschema_npm, into
# $WHARF_BUILD_DIR/npm-tableschema once.  The version is pinned so the list
# of known disagreements (tests/cases/tableschema-npm-known.tsv) stays true.
set -eu
: "${WHARF_BUILD_DIR:?WHARF_BUILD_DIR must be set}"
dest="$WHARF_BUILD_DIR/npm-tableschema"
if [ -f "$dest/node_modules/tableschema/package.json" ]; then
    exit 0
fi
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error tableschema@1.12.6
test -f "$dest/node_modules/tableschema/package.json"

#!/usr/bin/env bash
# The Table Schema conformance cases (tests/cases/tableschema.tsv, proven
# against wharf by unit/test_tableschema_cases) through a second validator,
# the npm tableschema package.  Every disagreement must be explained in
# tests/cases/tableschema-npm-known.tsv, and docs/table-schema.md must show
# exactly the current comparison table.  The package comes from the npm
# registry (tests/fetch-tableschema-npm.sh, a fixture): without it the test
# fails, it never passes silently.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"
: "${WHARF_BUILD_DIR:?}"
mods="$WHARF_BUILD_DIR/npm-tableschema/node_modules"
src="$WHARF_SOURCE_DIR"
if [ ! -f "$mods/tableschema/package.json" ]; then
  bad "the npm tableschema package is not installed in $mods (tests/fetch-tableschema-npm.sh)"
  finish; exit
fi
out=$(node "$src/tests/tableschema-npm.js" "$mods" "$src/tests/cases/tableschema.tsv" \
  "$src/tests/cases/tableschema-npm-known.tsv" --table 2>/dev/null); rc=$?
printf '%s\n' "$out" | grep -E '^(UNEXPLAINED|STALE)' | head -20
eq "every disagreement with tableschema-js is explained" "$rc" 0
summary=$(printf '%s\n' "$out" | tail -1)
echo "$summary"
contains "all cases ran" "$summary" "0 unexplained"
printf '%s\n' "$out" | grep '^|' > table.now
sed -n '/<!-- npm-comparison -->/,/<!-- \/npm-comparison -->/p' "$src/docs/table-schema.md" | grep '^|' > table.doc
if diff -u table.doc table.now > table.diff; then
  ok "docs/table-schema.md shows the current comparison"
else
  bad "docs/table-schema.md's comparison table is out of date: $(head -20 table.diff)"
fi
count=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9]*\) cases.*/\1/p')
[ "${count:-0}" -ge 300 ] && ok "at least 300 cases compared ($count)" || bad "only ${count:-0} cases compared"
finish

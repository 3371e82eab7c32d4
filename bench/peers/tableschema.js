// bench P3: the npm `tableschema` package (frictionlessdata/tableschema-js)
// validating a CSV against a Table Schema, streaming: every row cast and
// checked (types, constraints, unique), nothing loaded.  Exit 1 on the
// first invalid row.   usage: node tableschema.js NODE_MODULES SCHEMA FILE
'use strict';
const fs = require('fs');
const path = require('path');
const [modules, schemaPath, file] = process.argv.slice(2);
const { Table } = require(path.resolve(modules, 'tableschema'));

(async () => {
  const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
  const table = await Table.load(file, { schema, headers: 1 });
  const rows = await table.iter({ cast: true });
  let n = 0;
  for await (const row of rows) if (row) n++;
  console.log(`rows=${n}`);
})().catch((e) => {
  const errs = e.errors && e.errors.length ? e.errors : [e];
  console.error(String(errs[0].message || errs[0]));
  process.exit(1);
});

// The cases of tests/cases/tableschema.tsv through a second validator: the
// npm `tableschema` package (frictionlessdata/tableschema-js).  Each case's
// verdict (valid / invalid / refused) is compared with wharf's, which
// unit/test_tableschema_cases proves.  Every disagreement must be listed,
// with the reason, in tests/cases/tableschema-npm-known.tsv; an unlisted
// disagreement, or a listed one that no longer happens, fails the run.
//
// usage: node tableschema-npm.js NODE_MODULES CASES KNOWN [--table]
'use strict';
const fs = require('fs');
const path = require('path');
const [modules, casesPath, knownPath, mode] = process.argv.slice(2);
const { Schema, Table } = require(path.join(modules, 'tableschema'));

function unescape(s) {
  return s.replace(/\\(.)/g, (m, c) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

async function verdict(schemaText, input) {
  let desc = JSON.parse(schemaText);
  if (!desc.fields) {
    if (!desc.name) desc.name = 'v';
    desc = { fields: [desc] };
  }
  try {
    await Schema.load(JSON.parse(JSON.stringify(desc)), { strict: true });
  } catch (e) {
    return { v: 'refused', why: String(e.message || e).split('\n')[0] };
  }
  const names = desc.fields.map((f) => f.name);
  const rows = [names];
  for (const rec of unescape(input).split('\n')) {
    if (names.length > 1) rows.push(rec === '' ? [] : rec.split(','));
    else rows.push([rec === '(empty)' ? '' : rec]);
  }
  try {
    const table = await Table.load(rows, { schema: desc });
    const out = await table.read({ cast: true });
    return { v: 'valid', why: JSON.stringify(out).slice(0, 80) };
  } catch (e) {
    const errs = e.errors && e.errors.length ? e.errors : [e];
    return { v: 'invalid', why: String(errs[0].message || errs[0]).split('\n')[0] };
  }
}

(async () => {
  const known = new Map();
  for (const line of fs.readFileSync(knownPath, 'utf8').split('\n')) {
    if (!line || line[0] === '#' || line.startsWith('id\t')) continue;
    const [id, npm, reason] = line.split('\t');
    known.set(id, { npm, reason });
  }
  let n = 0, agree = 0, bad = 0, skipped = 0;
  const seen = new Set();
  const table = [];
  for (const line of fs.readFileSync(casesPath, 'utf8').split('\n')) {
    if (!line || line[0] === '#' || line.startsWith('id\t')) continue;
    const [id, type, schema, input, want] = line.split('\t');
    if (input.startsWith('@spill:')) { skipped++; continue; } // generated input: wharf only
    n++;
    const got = await verdict(schema, input);
    if (got.v === want) { agree++; continue; }
    seen.add(id);
    const k = known.get(id);
    table.push({ id, type, schema, input, want, npm: got.v, why: got.why, reason: k ? k.reason : '' });
    if (!k || k.npm !== got.v) {
      bad++;
      console.log(`UNEXPLAINED ${id}: wharf ${want}, tableschema ${got.v} (${got.why}) ` +
                  `schema ${schema} input ${input}`);
    }
  }
  for (const id of known.keys())
    if (!seen.has(id)) { bad++; console.log(`STALE ${id}: listed as a disagreement but both agree now`); }
  if (mode === '--table') {
    console.log('| case | type | schema | input | wharf | tableschema | why they differ |');
    console.log('|---|---|---|---|---|---|---|');
    const esc = (s) => String(s).replace(/\|/g, '\\|');
    for (const r of table)
      console.log(`| ${r.id} | ${r.type} | \`${esc(r.schema)}\` | \`${esc(r.input)}\` | ${r.want} | ${r.npm} | ${esc(r.reason)} |`);
  }
  console.log(`${n} cases (${skipped} generated ones skipped): ${agree} agree, ` +
              `${table.length} differ, ${bad} unexplained`);
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });

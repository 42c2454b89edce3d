// Minifies the beacon's two scripts with terser: `node beacon/build.mjs [out-dir]` (default
// dci/static, where the app serves them from). Deterministic: the test suite rebuilds into a
// temporary folder and compares with the committed files.
import { readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

export const SCRIPTS = { 'beacon.js': 'beacon/beacon.js', 'beacon-search.js': 'beacon/search.js' };
const OPTIONS = { compress: { passes: 3 }, mangle: true, ecma: 2021, format: { comments: false } };

const out = process.argv[2] || 'dci/static';
for (const [name, source] of Object.entries(SCRIPTS)) {
  const { code } = await minify(await readFile(source, 'utf8'), OPTIONS);
  await writeFile(`${out}/${name}`, code);
  console.log(`${name}: ${code.length} bytes, ${gzipSync(code, { level: 9 }).length} gzipped`);
}

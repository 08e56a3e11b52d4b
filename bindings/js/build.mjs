// Transpiles lakeport's component files into gen/ with jco:
//
//   node build.mjs DIR     DIR holds sigv4.wasm and sts.wasm
//                          (`lakeport components --export DIR` writes them)
//   node build.mjs --check fails unless gen/ is complete (run by `npm pack`)
//
// Async instantiation: the package supplies every import itself (the sts
// component's outgoing HTTP goes through a handler that checks the host).
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const COMPONENTS = ['sigv4', 'sts'];

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(1);
}

const arg = process.argv[2];
if (arg === undefined) fail('usage: node build.mjs DIR (a directory with sigv4.wasm and sts.wasm, from `lakeport components --export DIR`)');
if (arg === '--check') {
  for (const name of COMPONENTS) {
    if (!existsSync(join(here, 'gen', name, `${name}.js`))) {
      fail(`gen/${name} is missing: run \`node build.mjs DIR\` with the exported component files first`);
    }
  }
  process.exit(0);
}

const jco = join(here, 'node_modules', '.bin', 'jco');
if (!existsSync(jco)) fail('jco is not installed: run `./dev setup` (or `npm ci` in bindings/js)');
for (const name of COMPONENTS) {
  const wasm = resolve(arg, `${name}.wasm`);
  if (!existsSync(wasm)) fail(`${wasm} not found: export the components with \`lakeport components --export ${arg}\``);
}
rmSync(join(here, 'gen'), { recursive: true, force: true });
for (const name of COMPONENTS) {
  const out = join(here, 'gen', name);
  execFileSync(jco, ['transpile', resolve(arg, `${name}.wasm`), '-o', out, '--name', name, '--instantiation', 'async', '--quiet'], {
    stdio: 'inherit',
  });
}

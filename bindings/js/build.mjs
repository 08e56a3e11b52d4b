// Transpiles lakeport's component files into gen/ with jco:
//
//   node build.mjs DIR     DIR holds sigv4.wasm and sts.wasm
//                          (`lakeport components --export DIR` writes them)
//   node build.mjs --check fails unless gen/ is complete (run by `npm pack`)
//
// Async instantiation: the package supplies every import itself (the sts
// component's outgoing HTTP goes through a handler that checks the host).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
// jco 1.35's glue reads process.env.JCO_DEBUG on every one of its debug-log
// calls, about ten per export call: 1.5-3 µs of a 16-19 µs `sign`. Read it
// once, at load, instead. Left as generated if another jco writes it otherwise.
const DEBUG_CHECK = '  const _debugLog = (...args) => {\n    if (!globalThis?.process?.env?.JCO_DEBUG) { return; }';
const DEBUG_ONCE = '  const JCO_DEBUG = globalThis?.process?.env?.JCO_DEBUG;\n  const _debugLog = (...args) => {\n    if (!JCO_DEBUG) { return; }';

function readDebugOnce(file) {
  const code = readFileSync(file, 'utf8');
  if (!code.includes(DEBUG_CHECK)) {
    console.error(`build.mjs: note: ${file} reads JCO_DEBUG differently; left as generated`);
    return;
  }
  writeFileSync(file, code.replace(DEBUG_CHECK, DEBUG_ONCE));
}

rmSync(join(here, 'gen'), { recursive: true, force: true });
for (const name of COMPONENTS) {
  const out = join(here, 'gen', name);
  execFileSync(jco, ['transpile', resolve(arg, `${name}.wasm`), '-o', out, '--name', name, '--instantiation', 'async', '--quiet'], {
    stdio: 'inherit',
  });
  readDebugOnce(join(out, `${name}.js`));
}

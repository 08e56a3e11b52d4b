// Instantiates the transpiled components (gen/, made by build.mjs) with
// jco's async instantiation, so the package chooses every import itself.
import { readFile } from 'node:fs/promises';

/** Compiles the core modules of gen/NAME/ as the transpiled code asks for them. */
export function coreModules(name) {
  const dir = new URL(`../gen/${name}/`, import.meta.url);
  return (file) => readFile(new URL(file, dir)).then((bytes) => WebAssembly.compile(bytes));
}

/**
 * Imports keyed as the component names them (`wasi:io/streams@0.2.12`),
 * served from `byInterface` keyed without the version: the package works
 * whichever 0.2.x patch version the component was built against.
 */
export function versionless(byInterface) {
  return new Proxy(
    {},
    {
      get(_, key) {
        if (typeof key !== 'string') return undefined;
        return byInterface[key.replace(/@[^@/]*$/, '')];
      },
    },
  );
}

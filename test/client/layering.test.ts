// The SDK ships to users on its own: src/client/ may import only itself, src/wire/, node: built-ins
// and undici (ARCHITECTURE.md, "Layers").

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const clientDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/client');
const ALLOWED = [/^\.\/[\w-]+\.js$/, /^\.\.\/wire\/[\w-]+\.js$/, /^node:/, /^undici$/];

it('src/client imports nothing but itself, src/wire, node: and undici', () => {
  const offending: string[] = [];
  for (const name of readdirSync(clientDir).filter((n) => n.endsWith('.ts'))) {
    const source = readFileSync(resolve(clientDir, name), 'utf8');
    for (const match of source.matchAll(
      /^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/gm,
    )) {
      const specifier = match[1] ?? match[2] ?? '';
      if (!ALLOWED.some((pattern) => pattern.test(specifier))) offending.push(`${name}: ${specifier}`);
    }
  }
  expect(offending).toEqual([]);
});

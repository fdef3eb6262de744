// The SDK ships to users on its own. Two guards: src/client/ may import only itself, src/wire/,
// node: built-ins and undici (docs/architecture.md, "Layers"); and the package as built, imported by
// its name in a fresh process, loads no server code: no lmdb, piscina, fastify, pino, nothing of
// dist/api, broker, storage, raft, transport or cli. A resolve hook logs every module the import
// asks for, and require.cache shows every CommonJS module loaded; a control run of
// `raftlog/server` proves the check sees lmdb and fastify when they are loaded.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const clientDir = join(root, 'src/client');
const ALLOWED = [/^\.\/[\w-]+\.js$/, /^\.\.\/wire\/[\w-]+\.js$/, /^node:/, /^undici$/];
const SERVER_CODE = [
  /\/node_modules\/(lmdb|piscina|fastify|@fastify|pino|prom-client|commander|ajv|msgpackr)\//,
  /\/dist\/(api|broker|storage|raft|transport|cli)\//,
];

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

describe('the built package', () => {
  const work = mkdtempSync(join(tmpdir(), 'raftlog-layering-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** Imports `specifier` in a fresh node (cwd: the repo, so 'raftlog' is this package) and lists what loaded. */
  function loadedBy(specifier: string): { modules: string[]; exports: string[] } {
    const log = join(work, `${specifier.replace(/\W/g, '_')}.log`);
    writeFileSync(log, '');
    const hooks = join(work, 'hooks.mjs');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.RAFTLOG_LOAD_LOG, result.url + '\\n');
  return result;
}
`,
    );
    const register = join(work, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`,
    );
    const script = `
      const sdk = await import(${JSON.stringify(specifier)});
      const { createRequire } = await import('node:module');
      const required = Object.keys(createRequire(process.cwd() + '/').cache);
      console.log(JSON.stringify({ required, exports: Object.keys(sdk) }));
    `;
    const output = execFileSync(
      process.execPath,
      ['--import', register, '--input-type=module', '-e', script],
      {
        cwd: root,
        env: { ...process.env, RAFTLOG_LOAD_LOG: log },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    const { required, exports } = JSON.parse(output.trim().split('\n').at(-1)!) as {
      required: string[];
      exports: string[];
    };
    const resolved = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    return { modules: [...resolved, ...required].map((m) => m.replace(/^file:\/\//, '')), exports };
  }

  function builtFromCurrentSources(): void {
    const entry = join(root, 'dist/client/index.js');
    if (!existsSync(entry))
      throw new Error('dist/ is not built: run `npm run build` (npm test builds first)');
    const builtMs = statSync(entry).mtimeMs;
    for (const dir of ['src/client', 'src/wire']) {
      for (const name of readdirSync(join(root, dir))) {
        if (statSync(join(root, dir, name)).mtimeMs > builtMs) {
          throw new Error(`${dir}/${name} is newer than dist/: run \`npm run build\``);
        }
      }
    }
  }

  it("import 'raftlog' loads the SDK from dist/ and no server code", () => {
    builtFromCurrentSources();
    const { modules, exports } = loadedBy('raftlog');
    expect(modules).toContain(join(root, 'dist/client/index.js'));
    expect(modules.some((m) => m.includes('/node_modules/undici/'))).toBe(true);
    expect(modules.filter((m) => SERVER_CODE.some((pattern) => pattern.test(m)))).toEqual([]);
    expect(exports).toEqual(expect.arrayContaining(['Raftlog', 'RaftlogError', 'Producer', 'Consumer']));
  });

  it("import 'raftlog/server' does load the server (the check above can see it)", () => {
    const { modules, exports } = loadedBy('raftlog/server');
    expect(modules.some((m) => /\/node_modules\/lmdb\//.test(m))).toBe(true);
    expect(modules.some((m) => /\/node_modules\/fastify\//.test(m))).toBe(true);
    expect(exports).toContain('startServer');
  });

  it('package.json exports the SDK with its types, and the server under raftlog/server', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.exports['.']).toEqual({
      types: './dist/client/index.d.ts',
      default: './dist/client/index.js',
    });
    expect(pkg.exports['./server']).toEqual({ types: './dist/server.d.ts', default: './dist/server.js' });
    expect(pkg.types).toBe('./dist/client/index.d.ts');
    expect(existsSync(join(root, 'dist/client/index.d.ts'))).toBe(true);
    expect(existsSync(join(root, 'dist/server.d.ts'))).toBe(true);
    expect(pkg.files).toEqual(expect.arrayContaining(['bin', 'dist']));
  });
});

// docs/sdk.md is run, not just read: every ```ts block is a whole program, run in document order
// in its own process (tsx) against one 3-node cluster listening on 127.0.0.1, with `'raftlog'`
// pointed at this repo's SDK and the docs' node URLs (127.0.0.1:9090..9092) at the cluster's. A
// ```text output block right after an example is what it must print. A ```ts sigterm example
// is sent SIGTERM by PID once it has printed its first line, and must then exit 0 on its own.
// The examples as written also pass a strict type check (tsc), 'raftlog' mapped to src/client.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListeningCluster } from '../api/listening-cluster.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const sdkEntry = pathToFileURL(join(root, 'src/client/index.ts')).href;
const EXAMPLE_TIMEOUT_MS = 30_000;
const DOCS_PORTS = [9090, 9091, 9092];

interface Example {
  /** 1-based line of the opening fence, for the test's name. */
  line: number;
  code: string;
  sigterm: boolean;
  output: string | undefined;
}

/** The ```ts blocks of the page, each with the ```text output block that follows it, if any. */
function examplesOf(markdown: string): Example[] {
  const examples: Example[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(fence)) {
    const info = match[1]!.trim().split(/\s+/);
    const line = markdown.slice(0, match.index).split('\n').length;
    if (info[0] === 'ts') {
      examples.push({ line, code: match[2]!, sigterm: info.includes('sigterm'), output: undefined });
    } else if (info[0] === 'text' && info[1] === 'output') {
      const last = examples.at(-1);
      if (!last || last.output !== undefined)
        throw new Error(`docs/sdk.md:${line}: output without an example`);
      last.output = match[2]!;
    }
  }
  return examples;
}

const examples = examplesOf(readFileSync(join(root, 'docs/sdk.md'), 'utf8'));
let cluster: ListeningCluster;
let work: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  cluster = new ListeningCluster(3);
  await cluster.start();
  work = mkdtempSync(join(tmpdir(), 'raftlog-docs-sdk-'));
  mkdirSync(join(work, 'typed'));
  const urls = [...cluster.urls.values()];
  for (const [index, example] of examples.entries()) {
    let code = example.code.replaceAll("from 'raftlog'", `from ${JSON.stringify(sdkEntry)}`);
    DOCS_PORTS.forEach((port, i) => {
      code = code.replaceAll(`http://127.0.0.1:${port}`, urls[i]!);
    });
    writeFileSync(exampleFile(index), code);
    // As the user writes it, for the type check: 'raftlog' is mapped to the sources.
    writeFileSync(join(work, 'typed', `example-${index + 1}.mts`), example.code);
  }
  writeFileSync(
    join(work, 'typed', 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
        paths: { raftlog: [join(root, 'src/client/index.ts')] },
      },
      include: ['*.mts'],
    }),
  );
});

function exampleFile(index: number): string {
  return join(work, `example-${index + 1}.mts`);
}

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs one example; resolves with its exit code and output once it has exited. */
function run(
  example: Example,
  file: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`docs/sdk.md:${example.line}: no exit within ${EXAMPLE_TIMEOUT_MS} ms\n${stdout}${stderr}`),
      );
    }, EXAMPLE_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (example.sigterm && !signalled && stdout.includes('\n')) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolveRun({ code, stdout, stderr });
    });
  });
}

describe('docs/sdk.md', () => {
  it('has examples, and output for most of them', () => {
    expect(examples.length).toBeGreaterThanOrEqual(6);
    expect(examples.filter((e) => e.output !== undefined).length).toBeGreaterThanOrEqual(4);
    for (const example of examples) expect(example.code).toContain("from 'raftlog'");
  });

  it('type-checks every example as written (tsc --noEmit, strict)', () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const result = spawnSync(process.execPath, [tsc, '--noEmit', '-p', join(work, 'typed')], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 120_000);

  for (const [index, example] of examples.entries()) {
    it(`example ${index + 1} (line ${example.line}) runs${example.output ? ' and prints its output' : ''}`, async () => {
      const result = await run(example, exampleFile(index));
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      if (example.output !== undefined) expect(result.stdout).toBe(example.output);
      if (example.sigterm) expect(result.stdout.trim().split('\n').at(-1)).toBe('stopped');
    });
  }
});

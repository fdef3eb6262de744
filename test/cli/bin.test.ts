// The real executable, `node bin/raftlog ...`, as a user runs it: exit codes, one-line errors,
// --debug, $RAFTLOG_URL, stdin, and Ctrl-C (SIGINT to the PID) ending `tail --follow` with 0.
// It runs the built CLI (dist/), which `npm test` builds first.

import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from './cli-io.js';
import { type BinOptions, type BinRun, startBin } from './run-bin.js';

const BUILT_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  children.clear();
});

function start(args: string[], options: BinOptions = {}) {
  const started = startBin(args, options);
  children.add(started.child);
  return started;
}

function raftlog(args: string[], options: BinOptions = {}): Promise<BinRun> {
  return start(args, options).exited;
}

/** A URL where nothing listens: a port bound and released. */
async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

beforeAll(() => {
  // Fail loudly rather than skip: a missing build would otherwise hide every test below.
  if (!existsSync(BUILT_MAIN)) {
    throw new Error(`${BUILT_MAIN} is missing: run 'npm run build' first ('npm test' does)`);
  }
});

describe('bin/raftlog exit codes', () => {
  it('--version exits 0', async () => {
    const run = await raftlog(['--version']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('a usage error exits 2 with one line on stderr', async () => {
    for (const args of [
      ['topic', 'create'],
      ['start', '--listen', 'nope'],
      ['tail', 't', '--from', 'x'],
      ['bogus'],
    ]) {
      const run = await raftlog(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr).toMatch(/^raftlog: /);
      expect(run.stdout).toBe('');
    }
  });

  it('a node that is not running: exit 1, one line that says what to do', async () => {
    const url = await closedUrl();
    const run = await raftlog(['topic', 'list', '--server', url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `raftlog: cannot reach ${url} (connection refused) — is a node running? start one with 'raftlog start'\n`,
    );
  });

  it('--debug adds the stack trace', async () => {
    const run = await raftlog(['cluster', '--server', await closedUrl(), '--debug']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^raftlog: cannot reach/);
    expect(run.stderr).toMatch(/\n\s+at /);
  });

  it('$RAFTLOG_URL picks the node', async () => {
    const url = await closedUrl();
    const run = await raftlog(['produce', 't', 'v'], { env: { RAFTLOG_URL: url } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot reach ${url}`);
  });
});

describe('bin/raftlog against a scripted HTTP node on 127.0.0.1', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(
    handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
  ): Promise<string> {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk));
      req.on('end', () => handler(req, res, body));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  function json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  it('produces stdin lines and prints their offsets', async () => {
    let next = 0;
    const url = await serve((req, res, body) => {
      if (req.method === 'GET' && req.url === '/v1/topics/demo') {
        return json(res, 200, {
          name: 'demo',
          config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
          partitions: [
            { partition: 0, leader: 1, term: 1, replicas: [1], logStartOffset: 0, highWatermark: 0 },
          ],
        });
      }
      if (req.method !== 'POST') return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no' } });
      const records = (JSON.parse(body) as { records: unknown[] }).records;
      json(res, 200, { offsets: records.map(() => ({ partition: 0, offset: next++ })), duplicate: false });
    });
    const run = await raftlog(['produce', 'demo', '--server', url], { stdin: 'one\ntwo\nthree\n' });
    expect(run).toMatchObject({
      code: 0,
      stdout: '0:0\n0:1\n0:2\n',
      // The summary of issue 18: records, bytes, time.
      stderr: expect.stringMatching(
        /^raftlog: produced 3 records \(11 B\) in [\d.]+ s(, \d+ records\/s)?\n$/,
      ),
    });
  });

  it('tail --follow falls back to fetch and exits 0 on SIGINT', async () => {
    const url = await serve((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/v1/topics/demo') {
        return json(res, 200, {
          name: 'demo',
          config: { persistence: 'async', retentionMs: -1, retentionBytes: -1 },
          partitions: [
            { partition: 0, leader: 1, term: 1, replicas: [1], logStartOffset: 0, highWatermark: 1 },
          ],
        });
      }
      if (path === '/v1/topics/demo/partitions/0/records') {
        const offset = new URL(req.url!, url).searchParams.get('offset');
        const empty = (at: number) => ({ records: [], nextOffset: at, highWatermark: at, logStartOffset: 0 });
        // --follow starts at latest (empty log), then the record "hello" commits at offset 0.
        if (offset === 'latest') return json(res, 200, empty(0));
        if (offset === '0') {
          // tail reads bytes: base64 on the wire.
          const base64 = new URL(req.url!, url).searchParams.get('encoding') === 'base64';
          const records = [{ offset: 0, key: null, value: base64 ? 'aGVsbG8=' : 'hello', timestamp: 1 }];
          return json(res, 200, { records, nextOffset: 1, highWatermark: 1, logStartOffset: 0 });
        }
        // Caught up: hold the long-poll a little, as a node does, then answer empty.
        setTimeout(() => json(res, 200, empty(1)), 100);
        return;
      }
      json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}` } });
    });
    const tail = start(['tail', 'demo', '--follow', '--server', url]);
    await until(() => tail.run.stdout.includes('0:0 - hello'), 'the first record');
    process.kill(tail.child.pid!, 'SIGINT');
    const run = await tail.exited;
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('0:0 - hello\n');
    expect(run.stderr).toBe('');
  });
});

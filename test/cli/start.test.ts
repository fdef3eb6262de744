// `raftlog start`: flags become ServerOptions (with the single-node defaults), bad flags exit 2,
// SIGTERM/SIGINT close the node and exit 0, a hung close is cut off with exit 1.

import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ServerOptions } from '../../src/api/server.js';
import { brokerHeapFlags, HEAP_GROWING_PERCENT } from '../../src/cli/broker-heap.js';
import type { NodeHandle } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/program.js';
import { serverOptionsOf, startCommand } from '../../src/cli/start.js';
import { TestIo, until } from './cli-io.js';

/** A node that records its options and how it was closed. */
function fakeServer(io: TestIo, close: () => Promise<void> = async () => {}) {
  const calls = { started: [] as ServerOptions[], closed: 0 };
  io.startServer = async (options) => {
    calls.started.push(options);
    const server: NodeHandle = {
      nodeId: options.nodeId,
      url: `http://${options.listen.host}:${options.listen.port}`,
      close: async () => {
        calls.closed++;
        await close();
      },
    };
    return server;
  };
  return calls;
}

describe('start flags', () => {
  it('defaults to a single node on 127.0.0.1:9090 with ./raftlog-data', () => {
    expect(serverOptionsOf({})).toEqual({
      nodeId: 1,
      dataDir: resolve('./raftlog-data'),
      listen: { host: '127.0.0.1', port: 9090 },
      peers: new Map([[1, 'http://127.0.0.1:9090']]),
      defaultPersistence: 'async',
      logLevel: 'info',
    });
  });

  it('passes every flag through', async () => {
    const io = new TestIo();
    const calls = fakeServer(io);
    const argv = [
      'start',
      '--id',
      '2',
      '--data',
      '/tmp/n2',
      '--listen',
      '0.0.0.0:9191',
      '--peers',
      '1=http://10.0.0.1:9090,2=http://10.0.0.2:9191/,3=https://n3.example:443',
      '--persistence',
      'sync',
      '--log-level',
      'debug',
      '--disk-free-min-bytes',
      '1048576',
    ];
    const done = runCli(argv, io);
    await until(() => calls.started.length === 1 && io.listening, 'the node to start');
    expect(calls.started[0]).toEqual({
      nodeId: 2,
      dataDir: '/tmp/n2',
      listen: { host: '0.0.0.0', port: 9191 },
      peers: new Map([
        [1, 'http://10.0.0.1:9090'],
        [2, 'http://10.0.0.2:9191'],
        [3, 'https://n3.example'],
      ]),
      defaultPersistence: 'sync',
      logLevel: 'debug',
      diskFreeBytesMin: 1048576,
    });
    io.interrupt('SIGTERM');
    expect(await done).toBe(0);
  });

  it('defaults peers to the listen address, and accepts [v6]:port and :port', async () => {
    expect(serverOptionsOf({ id: 3, listen: { host: '::1', port: 9300 } }).peers).toEqual(
      new Map([[3, 'http://[::1]:9300']]),
    );
    const io = new TestIo();
    const calls = fakeServer(io);
    const done = runCli(['start', '--listen', ':9400'], io);
    await until(() => calls.started.length === 1 && io.listening, 'the node to start');
    expect(calls.started[0]!.listen).toEqual({ host: '127.0.0.1', port: 9400 });
    io.interrupt('SIGINT');
    expect(await done).toBe(0);
  });

  const invalid: Array<[string, string[], RegExp]> = [
    ['--peers without ID=', ['--peers', 'http://127.0.0.1:9090'], /--peers <list>.*is not ID=URL/],
    ['--peers with a bad URL', ['--peers', '1=localhost'], /node 1: invalid server URL/],
    ['--peers with an id twice', ['--peers', '1=http://a:1,1=http://b:2'], /node 1 is listed twice/],
    ['--listen without port', ['--listen', '127.0.0.1'], /--listen <host:port>/],
    ['--listen with port 0', ['--listen', '127.0.0.1:0'], /port 1 to 65535/],
    [
      '--id missing from --peers',
      ['--id', '4', '--peers', '1=http://a:1,2=http://b:2'],
      /--id 4 is not in --peers/,
    ],
    ['--persistence unknown', ['--persistence', 'fast'], /Allowed choices are sync, async, memory/],
    ['--log-level unknown', ['--log-level', 'loud'], /--log-level/],
    ['--id not a number', ['--id', 'one'], /--id <id>/],
  ];
  for (const [what, flags, message] of invalid) {
    it(`refuses ${what} with exit 2`, async () => {
      const io = new TestIo();
      const calls = fakeServer(io);
      expect(await runCli(['start', ...flags], io)).toBe(2);
      expect(io.errLines).toHaveLength(1);
      expect(io.err).toMatch(message);
      expect(calls.started).toEqual([]);
    });
  }
});

describe('start lifecycle', () => {
  it('closes the node on SIGTERM and exits 0', async () => {
    const io = new TestIo();
    const calls = fakeServer(io);
    const done = startCommand({}, io);
    await until(() => calls.started.length === 1 && io.listening, 'the node to start');
    io.interrupt('SIGTERM');
    expect(await done).toBe(0);
    expect(calls.closed).toBe(1);
    expect(io.listening).toBe(false);
    expect(io.exits).toEqual([]);
  });

  it('forces exit 1 when close() takes longer than the shutdown timeout', async () => {
    const io = new TestIo();
    let finishClose!: () => void;
    const calls = fakeServer(io, () => new Promise<void>((resolve) => (finishClose = resolve)));
    const done = startCommand({ shutdownTimeoutMs: 50 }, io);
    await until(() => calls.started.length === 1 && io.listening, 'the node to start');
    io.interrupt('SIGINT');
    await until(() => io.exits.length === 1, 'the forced exit');
    expect(io.exits).toEqual([1]);
    expect(io.err).toBe('raftlog: node 1 did not shut down within 0.05 s\n');
    finishClose();
    await done;
  });

  it('a second interrupt exits 1 at once', async () => {
    const io = new TestIo();
    let finishClose!: () => void;
    const calls = fakeServer(io, () => new Promise<void>((resolve) => (finishClose = resolve)));
    const done = startCommand({}, io);
    await until(() => calls.started.length === 1 && io.listening, 'the node to start');
    io.interrupt('SIGINT');
    await until(() => calls.closed === 1, 'close() to begin');
    io.interrupt('SIGINT');
    expect(io.exits).toEqual([1]);
    finishClose();
    expect(await done).toBe(0);
  });

  it('explains an address in use in one line, exit 1', async () => {
    const io = new TestIo();
    io.startServer = async () => {
      throw Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:9090'), {
        code: 'EADDRINUSE',
      });
    };
    expect(await runCli(['start'], io)).toBe(1);
    expect(io.err).toBe('raftlog: 127.0.0.1:9090 is already in use (is another node running there?)\n');
    expect(io.listening).toBe(false);
  });

  it('reports any other start failure in one line, with the stack only under --debug', async () => {
    const io = new TestIo();
    io.startServer = async () => {
      throw new Error('cannot open /data/node-1: corrupt segment 00000042.log at byte 512');
    };
    expect(await runCli(['start'], io)).toBe(1);
    expect(io.err).toBe('raftlog: cannot open /data/node-1: corrupt segment 00000042.log at byte 512\n');
    const debug = new TestIo();
    debug.startServer = io.startServer;
    expect(await runCli(['start', '--debug'], debug)).toBe(1);
    expect(debug.err).toMatch(/\n\s+at /);
  });
});

describe('start: the node process heap', () => {
  it('sets the heap growing factor before the node starts', async () => {
    const io = new TestIo();
    const calls = fakeServer(io);
    const startNode = io.startServer!;
    const flagsWhenStarted: string[][] = [];
    io.startServer = (options) => {
      flagsWhenStarted.push([...io.v8Flags]);
      return startNode(options);
    };
    const done = startCommand({}, io);
    await until(() => calls.started.length === 1 && io.listening, 'the node to start');
    io.interrupt('SIGTERM');
    expect(await done).toBe(0);
    expect(flagsWhenStarted).toEqual([[`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]]);
  });

  it("keeps a growing factor the user gave on node's command line", () => {
    expect(brokerHeapFlags([])).toBe('--heap-growing-percent=300');
    expect(brokerHeapFlags(['--max-old-space-size=512', '--enable-source-maps'])).toBe(
      '--heap-growing-percent=300',
    );
    expect(brokerHeapFlags(['--heap-growing-percent=50'])).toBeNull();
    expect(brokerHeapFlags(['--enable-source-maps', '--heap_growing_percent=80'])).toBeNull();
    expect(brokerHeapFlags(['--heap-growing-percent'])).toBeNull();
    // A longer flag that only begins the same is not the growing factor.
    expect(brokerHeapFlags(['--heap-growing-percentage=5'])).toBe('--heap-growing-percent=300');
  });
});

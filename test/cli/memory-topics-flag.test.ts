// `raftlog start --memory-topics-max-bytes`: the bound on memory-topic data reaches the server's
// options; without the flag the broker picks its default; a bad value exits 2.

import { describe, expect, it } from 'vitest';
import type { ServerOptions } from '../../src/api/server.js';
import type { NodeHandle } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/program.js';
import { serverOptionsOf } from '../../src/cli/start.js';
import { TestIo, until } from './cli-io.js';

describe('raftlog start --memory-topics-max-bytes', () => {
  it('is passed to the server; absent, the broker picks its default', async () => {
    expect(serverOptionsOf({ memoryTopicsMaxBytes: 1234 }).memoryTopicsBytesMax).toBe(1234);
    expect('memoryTopicsBytesMax' in serverOptionsOf({})).toBe(false);
    const io = new TestIo();
    const started: ServerOptions[] = [];
    io.startServer = async (options) => {
      started.push(options);
      const server: NodeHandle = { nodeId: options.nodeId, url: 'http://127.0.0.1:9', close: async () => {} };
      return server;
    };
    const done = runCli(['start', '--memory-topics-max-bytes', '536870912'], io);
    await until(() => started.length === 1 && io.listening, 'the node to start');
    expect(started[0]!.memoryTopicsBytesMax).toBe(536870912);
    io.interrupt('SIGTERM');
    expect(await done).toBe(0);
  });

  for (const value of ['0', '-1', '1.5', 'lots']) {
    it(`refuses ${value} with exit 2`, async () => {
      const io = new TestIo();
      io.startServer = async () => {
        throw new Error('must not start');
      };
      expect(await runCli(['start', '--memory-topics-max-bytes', value], io)).toBe(2);
      expect(io.err).toMatch(/--memory-topics-max-bytes/);
    });
  }
});

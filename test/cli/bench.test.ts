// `raftlog bench`: it refuses in one line when no cluster answers, and a tiny run against a real
// one-node cluster prints the suite's tables (bench/suite/, loaded at run time).

import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { ProcessCluster } from '../integration/process-cluster.js';
import { TestIo } from './cli-io.js';

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

describe('raftlog bench', () => {
  it('refuses in one line, exit 1, when no cluster answers at --server', async () => {
    const io = new TestIo();
    const url = `http://127.0.0.1:${await closedPort()}`;
    const code = await runCli(['bench', '--server', url, '--seconds', '1'], io);
    expect(code).toBe(1);
    expect(io.errLines).toHaveLength(1);
    expect(io.err).toContain(`cannot benchmark ${url}: no raftlog cluster answers there`);
    expect(io.out).toBe('');
  });

  it('refuses an unknown persistence mode as a usage error', async () => {
    const io = new TestIo();
    expect(await runCli(['bench', '--persistence', 'async,fast'], io)).toBe(2);
    expect(io.err).toContain("'fast' is not one of sync, async, memory");
  });

  describe('against a running one-node cluster', () => {
    let cluster: ProcessCluster | undefined;
    afterAll(async () => {
      await cluster?.destroy();
    });

    it('runs a tiny --seconds 1 suite and prints its tables', { timeout: 120_000 }, async () => {
      cluster = await ProcessCluster.create(1, 'memory');
      cluster.startAll();
      await cluster.waitReady(30_000);
      const io = new TestIo();
      const code = await runCli(
        ['bench', '--server', cluster.node(1).url, '--persistence', 'memory', '--seconds', '1'],
        io,
      );
      expect(code, io.err).toBe(0);
      for (const title of [
        'memory: commit latency, 1 connection',
        'memory: throughput',
        'memory: latency under load',
        'memory: produce to consume',
      ]) {
        expect(io.out).toContain(title);
      }
      expect(io.out).toMatch(/to leader\s+\d/);
      expect(io.err).toContain('[memory] throughput');
    });
  });
});

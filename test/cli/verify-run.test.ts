// `raftlog verify` for a few seconds against `raftlog dev --chaos` (real nodes: the built CLI, so
// `npm run build` first), with faults every second or so: a clean verdict, exit 0.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { devCommand } from '../../src/cli/dev.js';
import { verifyCommand } from '../../src/cli/verify/run.js';
import { TestIo, until } from './cli-io.js';

/** A base port whose next `count` ports are free on 127.0.0.1 right now. */
async function freeBasePort(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no free port range found');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('raftlog verify against raftlog dev --chaos', () => {
  it('ends with a clean verdict after a few seconds of faults', { timeout: 45_000 }, async () => {
    const basePort = await freeBasePort(3 + 3 * 2); // Nodes, then one proxy per directed link.
    const data = mkdtempSync(join(tmpdir(), 'raftlog-verify-run-'));
    const devIo = new TestIo({ env: { ...process.env, NO_COLOR: '1' } as Record<string, string> });
    const limits = { quietMsMin: 200, quietMsMax: 400, durationMsMin: 400, durationMsMax: 800 };
    const dev = devCommand({ nodes: 3, basePort, data, chaos: true, seed: 11, chaosLimits: limits }, devIo);
    try {
      await until(() => devIo.out.includes('Ctrl-C stops the cluster.'), 'the dev cluster', 20_000);
      const io = new TestIo();
      const server = `http://127.0.0.1:${basePort}`;
      const code = await verifyCommand(
        'checked',
        { server, seconds: 4, partitions: 2, catchUpTimeoutMs: 15_000 },
        io,
      );
      expect(io.out).toContain('verdict: OK');
      expect(io.err).toContain("verify: created topic 'checked' (2 partitions, replication 3");
      expect(code).toBe(0);
      // Given one node, whose /v1/cluster lists the others at proxy ports, verify reads each node directly.
      const direct = [1, 2, 3].map((id) => `n${id} http://127.0.0.1:${basePort + id - 1}`).join(', ');
      expect(io.err).toContain(`replicas read at ${direct}`);
      expect(devIo.out).toMatch(/\[chaos\] \d\d:\d\d:\d\d\.\d{3} \+\d+\.\ds #0 /);
    } finally {
      devIo.interrupt('SIGINT');
      const exitCode = await dev;
      rmSync(data, { recursive: true, force: true });
      expect(exitCode).toBe(0);
    }
  });
});

// `raftlog dev` with real child processes: a stand-in node script (same flags as `raftlog start`)
// so the test does not depend on the broker. Checks flags, tagged readable logs, the ready banner,
// reports of a crashed child, and that every child is stopped by PID (SIGTERM, then SIGKILL).

import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { devCommand, type Launcher } from '../../src/cli/dev.js';
import { TestIo, until } from './cli-io.js';

/** Starts every ANSI color code. */
const ESC = '\u001b';
const STAND_IN = fileURLToPath(new URL('./fixtures/stand-in-node.mjs', import.meta.url));
const launcher: Launcher = (startArgs) => ({ command: process.execPath, args: [STAND_IN, ...startArgs] });

/** PIDs the stand-ins reported; every test ends with all of them gone. */
let reportedPids: number[] = [];
afterEach(async () => {
  const alive = reportedPids.filter(isAlive);
  for (const pid of alive) process.kill(pid, 'SIGKILL'); // Safety net only: dev should have done it.
  reportedPids = [];
  expect(alive).toEqual([]);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidsIn(output: string): number[] {
  return [...output.matchAll(/standInPid=(\d+)/g)].map((m) => Number(m[1]));
}

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

describe('raftlog dev', () => {
  it('starts N nodes with the right flags, tags their logs, prints the hint, and stops them on Ctrl-C', async () => {
    const basePort = await freeBasePort(3);
    const io = new TestIo({ env: { ...process.env } as Record<string, string> });
    const done = devCommand({ nodes: 3, basePort, data: '/tmp/raftlog-dev-test', launcher }, io);
    await until(() => io.out.includes('Ctrl-C stops the cluster.'), 'the ready banner');
    reportedPids = pidsIn(io.out);
    expect(reportedPids).toHaveLength(3);

    const peers = [1, 2, 3].map((id) => `${id}=http://127.0.0.1:${basePort + id - 1}`).join(',');
    for (const id of [1, 2, 3]) {
      const line = io.outLines.find((l) => l.startsWith(`[n${id}]`) && l.includes('node started'))!;
      // One readable line per pino line: time, level, message, fields (pid and time dropped).
      expect(line).toMatch(
        new RegExp(`^\\[n${id}\\] \\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  node started node=${id}`),
      );
      expect(line).toContain(`peers=${peers}`);
      expect(line).toContain(`data=/tmp/raftlog-dev-test/node-${id}`);
      expect(io.errLines).toContain(`[n${id}] plain stderr line from ${id}`);
    }
    expect(io.out).toContain(`[n1] http://127.0.0.1:${basePort}`);
    expect(io.out).toContain(`raftlog topic create demo --server http://127.0.0.1:${basePort}`);
    expect(io.out).not.toContain(`${ESC}[`); // Not a terminal: no colors.

    io.interrupt('SIGINT');
    expect(await done).toBe(0);
    expect(reportedPids.filter(isAlive)).toEqual([]);
    expect(io.out).toContain('raftlog dev: stopped');
    expect(io.err).not.toContain('exited unexpectedly');
  });

  it('says when a node dies on its own, and keeps the others running', async () => {
    const basePort = await freeBasePort(2);
    const io = new TestIo({ env: { ...process.env, STAND_IN_CRASH_ID: '2' } as Record<string, string> });
    const done = devCommand({ nodes: 2, basePort, data: '/tmp/raftlog-dev-test', launcher }, io);
    await until(() => io.err.includes('[n2] exited unexpectedly (code 3)'), 'the crash report');
    await until(() => pidsIn(io.out).length === 2, 'both nodes to report');
    reportedPids = pidsIn(io.out);
    expect(io.out).toMatch(/\[n2\] \S+ ERROR crashing on purpose node=2 err=Error: boom/);
    expect(isAlive(reportedPids.find((pid) => io.out.includes(`node=1 standInPid=${pid}`))!)).toBe(true);
    io.interrupt('SIGTERM');
    expect(await done).toBe(0);
  });

  it('exits 1 when every node has died', async () => {
    const basePort = await freeBasePort(1);
    const io = new TestIo({ env: { ...process.env, STAND_IN_CRASH_ID: '1' } as Record<string, string> });
    expect(await devCommand({ nodes: 1, basePort, data: '/tmp/raftlog-dev-test', launcher }, io)).toBe(1);
    reportedPids = pidsIn(io.out);
    expect(io.errLines).toContain('raftlog: every node of the dev cluster has exited');
  });

  it('escalates to SIGKILL when a node ignores SIGTERM past the stop timeout', async () => {
    const basePort = await freeBasePort(2);
    const io = new TestIo({ env: { ...process.env, STAND_IN_IGNORE_TERM: '1' } as Record<string, string> });
    const done = devCommand(
      { nodes: 2, basePort, data: '/tmp/raftlog-dev-test', launcher, stopTimeoutMs: 300 },
      io,
    );
    await until(() => io.out.includes('Ctrl-C stops the cluster.'), 'the ready banner');
    reportedPids = pidsIn(io.out);
    io.interrupt('SIGINT');
    expect(await done).toBe(0);
    expect(io.err).toContain('raftlog dev: killing n1, n2 after 300 ms');
    expect(io.out).toContain('ignoring SIGTERM');
    expect(reportedPids.filter(isAlive)).toEqual([]);
  });

  it('colors the tags on a terminal unless NO_COLOR is set', async () => {
    for (const [noColor, colored] of [
      [undefined, true],
      ['1', false],
    ] as const) {
      const basePort = await freeBasePort(1);
      const env = { ...process.env, STAND_IN_CRASH_ID: '1' } as Record<string, string>;
      if (noColor) env.NO_COLOR = noColor;
      else delete env.NO_COLOR;
      const io = new TestIo({ env });
      io.stdout.isTTY = true;
      await devCommand({ nodes: 1, basePort, data: '/tmp/raftlog-dev-test', launcher }, io);
      reportedPids.push(...pidsIn(io.out.replaceAll(new RegExp(`${ESC}\\[[0-9;]*m`, 'g'), '')));
      expect(io.out.includes(`${ESC}[36m[n1]`)).toBe(colored);
    }
  });
});

// `raftlog dev --chaos` flags: what is refused before anything starts (exit 2).

import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { TestIo } from './cli-io.js';

describe('raftlog dev --chaos flags', () => {
  it('refuses fewer than 3 nodes: one fault would leave no majority', async () => {
    const io = new TestIo();
    expect(await runCli(['dev', '--chaos', '--nodes', '2', '--base-port', '19990'], io)).toBe(2);
    expect(io.errLines).toEqual([
      'raftlog: --chaos needs at least 3 nodes: with fewer, any fault stops the cluster',
    ]);
  });

  it('refuses --seed without --chaos, and a seed that is not an integer', async () => {
    const io = new TestIo();
    expect(await runCli(['dev', '--seed', '7', '--base-port', '19990'], io)).toBe(2);
    expect(io.errLines).toEqual(['raftlog: --seed needs --chaos']);
    const bad = new TestIo();
    expect(await runCli(['dev', '--chaos', '--seed', 'x'], bad)).toBe(2);
    expect(bad.err).toContain("option '--seed <n>' argument 'x' is invalid");
  });

  it('refuses a base port that leaves no room for the proxies', async () => {
    const io = new TestIo();
    expect(await runCli(['dev', '--chaos', '--base-port', '65530'], io)).toBe(2);
    expect(io.err).toContain('leaves no room for the chaos proxies');
  });
});

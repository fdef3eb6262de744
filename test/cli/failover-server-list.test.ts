// --server and $RAFTLOG_URL as comma-separated lists: a client command goes on to the next listed
// node when the first is down, and a bad entry is a usage error naming where it came from.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { connectionRefused, FakeNode } from '../client/fake-node.js';
import { TestIo } from './cli-io.js';

const DEAD = 'http://127.0.0.1:9091';
const LIVE = 'http://127.0.0.1:9092';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

/** DEAD refuses every connection; LIVE lists no groups. */
function twoNodes(): FakeNode {
  const node = new FakeNode(DEAD).serve(LIVE);
  nodes.push(node);
  node.on('GET', /^\/v1\/groups$/, (request) => {
    if (request.origin === DEAD) throw connectionRefused();
    return { status: 200, body: { groups: [] } };
  });
  return node;
}

describe('a list of nodes', () => {
  it('--server A,B: A down, the command is answered by B', async () => {
    const node = twoNodes();
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['group', 'list', '--server', `${DEAD}, ${LIVE}`], io)).toBe(0);
    expect(io.out).toBe('no consumer groups yet\n');
    expect(node.requests.map((r) => r.origin)).toEqual([DEAD, LIVE]);
  });

  it('$RAFTLOG_URL takes the same list', async () => {
    const node = twoNodes();
    const io = new TestIo({ dispatcher: node.agent, env: { RAFTLOG_URL: `${DEAD},${LIVE}` } });
    expect(await runCli(['group', 'list', '--json'], io)).toBe(0);
    expect(io.out).toBe('{"groups":[]}\n');
  });

  it('every listed node down: one line naming the last one tried, exit 1', async () => {
    const node = new FakeNode(DEAD).serve(LIVE);
    nodes.push(node);
    node.on('GET', /^\/v1\/groups$/, () => {
      throw connectionRefused();
    });
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['group', 'list', '--server', `${DEAD},${LIVE}`], io)).toBe(1);
    expect(io.errLines).toHaveLength(1);
    expect(io.err).toMatch(/^raftlog: cannot reach http:\/\/127\.0\.0\.1:909[12] \(connection refused\)/);
  });

  it('a bad entry is a usage error naming its source (exit 2)', async () => {
    const io = new TestIo({ env: { RAFTLOG_URL: `${LIVE},ftp://x` } });
    expect(await runCli(['group', 'list'], io)).toBe(2);
    expect(io.err).toMatch(/^raftlog: \$RAFTLOG_URL: invalid server URL/);
    const empty = new TestIo();
    expect(await runCli(['group', 'list', '--server', ' , '], empty)).toBe(2);
    expect(empty.err).toBe('raftlog: --server: give at least one node URL\n');
  });
});

// How verify finds each node's own URL when the cluster lists node-to-node proxies
// (raftlog dev --chaos), and its --server list parsing.

import { describe, expect, it } from 'vitest';
import { discoverNodes, type Probe } from '../../src/cli/verify/nodes.js';

const node = (id: number) => `http://127.0.0.1:${9089 + id}`;
const proxy = (from: number, to: number) => `http://127.0.0.1:${9100 + from * 10 + to}`;

/** Three nodes; node i lists itself at its own URL and node j at the proxy i → j; `cut` proxies do not answer. */
function chaosCluster(cut: Set<string> = new Set()): Probe {
  return async (url) => {
    for (let id = 1; id <= 3; id++) {
      const answersAs =
        url === node(id) || ([1, 2, 3].some((from) => url === proxy(from, id)) && !cut.has(url));
      if (!answersAs) continue;
      const nodes = [1, 2, 3].map((other) => ({
        id: other,
        url: other === id ? node(id) : proxy(id, other),
        alive: true,
      }));
      return { nodeId: id, cluster: { clusterId: 'c', nodes, metadataLeader: 1 } };
    }
    return undefined;
  };
}

describe('verify node discovery', () => {
  it('keeps each node at the URL it lists for itself, not at a proxy, from one --server URL', async () => {
    const direct = new Map<number, string>();
    await discoverNodes([node(1)], direct, chaosCluster());
    expect(Object.fromEntries(direct)).toEqual({ 1: node(1), 2: node(2), 3: node(3) });
  });

  it('learns a node whose proxy from the first node is cut later, through another node', async () => {
    const direct = new Map<number, string>();
    await discoverNodes([node(1)], direct, chaosCluster(new Set([proxy(1, 3)])));
    expect(direct.get(2)).toBe(node(2));
    expect(direct.get(3)).toBe(node(3)); // Through node 2's listing (proxy 2 → 3), then its own URL.
  });
});

// Where verify reaches each node directly. GET /v1/cluster lists every node at its --peers URL as
// the answering node knows it, which may be a proxy between nodes (raftlog dev --chaos) that a
// fault can cut; a node lists itself at its own URL. So: ask /v1/cluster at every URL we know,
// and keep, per node id, the URL at which that node answered (x-raftlog-node) and the URL it
// lists for itself once that one answers as it too. --server URLs come first.

import { type Dispatcher, request } from 'undici';
import { normalizeBaseUrl } from '../../client/index.js';
import type { ClusterResponse } from '../../wire/types.js';

export const NODE_HEADER = 'x-raftlog-node';
/** URLs asked per discovery round at most (a cluster of 9 nodes lists 9 URLs per answer). */
const URLS_PER_ROUND_MAX = 64;

/** The node that answered at the URL, and its cluster view; undefined when none did. */
export type Probe = (url: string) => Promise<{ nodeId: number; cluster: ClusterResponse } | undefined>;

export function httpProbe(timeoutMs: number, dispatcher?: Dispatcher): Probe {
  return async (url) => {
    try {
      const answer = await request(new URL('/v1/cluster', url), {
        method: 'GET',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher,
      });
      const body = (await answer.body.json()) as ClusterResponse;
      const nodeId = Number(answer.headers[NODE_HEADER]);
      if (answer.statusCode !== 200 || !Number.isInteger(nodeId)) return undefined;
      return { nodeId, cluster: body };
    } catch {
      return undefined;
    }
  };
}

/**
 * One discovery round: adds what it learns to `direct` (node id → URL that node answered at).
 * A URL is trusted for a node only when that node itself answered there.
 */
export async function discoverNodes(
  servers: readonly string[],
  direct: Map<number, string>,
  probe: Probe,
): Promise<void> {
  const asked = new Set<string>();
  const queue = [...servers, ...direct.values()];
  while (queue.length > 0 && asked.size < URLS_PER_ROUND_MAX) {
    const url = queue.shift()!;
    if (asked.has(url)) continue;
    asked.add(url);
    const answer = await probe(url);
    if (!answer) continue;
    const self = answer.cluster.nodes.find((node) => node.id === answer.nodeId);
    // The URL a node lists for itself is its own, not a proxy: prefer it once it answers as that node.
    if (!direct.has(answer.nodeId) || (self && safeUrl(self.url) === url)) direct.set(answer.nodeId, url);
    for (const node of answer.cluster.nodes) {
      const listed = safeUrl(node.url);
      if (listed && !asked.has(listed) && (!direct.has(node.id) || node.id === answer.nodeId))
        queue.push(listed);
    }
    if (self) {
      const own = safeUrl(self.url);
      if (own && !asked.has(own)) queue.unshift(own);
    }
  }
}

function safeUrl(url: string): string | undefined {
  try {
    return normalizeBaseUrl(url);
  } catch {
    return undefined;
  }
}

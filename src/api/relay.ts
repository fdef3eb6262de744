// Shared by the routes: where a request must go, and relaying another node's answer.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError } from '../broker/errors.js';
import type { TopicMeta } from '../broker/metadata-state.js';
import type { BrokerNode } from '../broker/node.js';
import { FORWARD_HOPS_MAX, FORWARDED_HEADER, type ForwardedResponse, type Forwarder } from './forward.js';

/** Set on an answer another node produced: the node(s) that did the work. */
export const SERVED_BY_HEADER = 'x-raftlog-served-by';

/** How long a node waits to learn metadata another node may just have written. */
export const METADATA_SYNC_TIMEOUT_MS = 5000;

export function hopsOf(request: FastifyRequest): number {
  const value = Number(request.headers[FORWARDED_HEADER] ?? 0);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

/** Sends another node's answer as ours (status, body, retry-after). */
export function relay(reply: FastifyReply, response: ForwardedResponse, servedBy: number): FastifyReply {
  reply.code(response.statusCode);
  for (const [name, value] of Object.entries(response.headers)) {
    if (name !== 'x-raftlog-node') reply.header(name, value);
  }
  reply.header(SERVED_BY_HEADER, String(servedBy));
  if (response.statusCode === 204) return reply.send();
  return reply.type(response.headers['content-type'] ?? 'application/json').send(response.body);
}

/** Forwards the request as received to `nodeId`, unless it has been forwarded too often. */
export async function forwardRequest(
  forwarder: Forwarder,
  request: FastifyRequest,
  reply: FastifyReply,
  nodeId: number,
  body?: unknown,
): Promise<FastifyReply> {
  const hops = hopsOf(request);
  if (hops >= FORWARD_HOPS_MAX) {
    throw new BrokerError('NO_LEADER', `no leader found after ${hops} forwards; retry shortly`);
  }
  const response = await forwarder.forward(nodeId, {
    method: request.method as 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: request.url,
    body: body === undefined ? undefined : JSON.stringify(body),
    hops,
  });
  return relay(reply, response, nodeId);
}

/** The topic's metadata; if unknown here, first catch up with the metadata leader, then decide. */
export async function topicMeta(broker: BrokerNode, name: string): Promise<TopicMeta> {
  const known = broker.metadata.topics.get(name);
  if (known) return known;
  await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
  return broker.metadata.topic(name);
}

// Moving a partition's leadership to a chosen replica. The request goes to the current leader
// (forwarded if this node is not it), whose Raft core brings the target up to date and tells it
// to campaign; the answer waits, bounded, until this node sees the target lead.

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { TopicMeta } from '../../broker/metadata-state.js';
import type { BrokerNode } from '../../broker/node.js';
import type { PartitionDescription } from '../../wire/types.js';
import type { ApiContext } from '../app.js';
import { forwardRequest, topicMeta } from '../relay.js';
import { errorResponses, partitionDescriptionSchema, partitionParamsSchema } from '../schemas.js';
import { describeTopic } from './topics.js';

/** How long the answer waits for the new leader by default, and at most. */
export const TRANSFER_TIMEOUT_MS_DEFAULT = 10_000;
export const TRANSFER_TIMEOUT_MS_MAX = 60_000;
/**
 * The core gives up a transfer that does not finish within an election timeout; until the
 * deadline the leader asks again this often (a target that was catching up may be ready now).
 */
const TRANSFER_RETRY_MS = 500;
const POLL_MS = 10;

interface TransferBody {
  node: number;
  timeoutMs?: number;
}

const transferBodySchema = {
  type: 'object',
  properties: {
    node: { type: 'integer', minimum: 1 },
    timeoutMs: { type: 'integer', minimum: 1, maximum: TRANSFER_TIMEOUT_MS_MAX },
  },
  required: ['node'],
  additionalProperties: false,
} as const;

function describePartition(broker: BrokerNode, topic: TopicMeta, partition: number): PartitionDescription {
  return describeTopic(broker, topic).partitions[partition]!;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** On the leader: asks for the transfer and waits until `target` leads, re-asking now and then. */
async function transferHere(
  broker: BrokerNode,
  topic: TopicMeta,
  partition: number,
  target: number,
  timeoutMs: number,
): Promise<PartitionDescription> {
  const placement = topic.partitions[partition]!;
  const local = broker.localPartition(placement.groupId)!;
  const deadline = Date.now() + timeoutMs;
  let askedAt = 0;
  for (;;) {
    if (local.group.closed) {
      throw new BrokerError('NO_LEADER', `${topic.name}/${partition} closed during the transfer; retry`);
    }
    if (local.group.leaderId === target) return describePartition(broker, topic, partition);
    const now = Date.now();
    if (now >= deadline) {
      throw new BrokerError(
        'TIMEOUT',
        `node ${target} did not take leadership of ${topic.name}/${partition} within ${timeoutMs} ms (leader now: ${local.group.leaderId || 'none'})`,
      );
    }
    // Only the leader can hand leadership on; after stepping down it waits to hear the target.
    if (local.group.isLeader && now - askedAt >= TRANSFER_RETRY_MS) {
      broker.transferLeadership(local, target);
      askedAt = now;
    }
    await sleep(POLL_MS);
  }
}

async function handleTransfer(
  { broker, forwarder }: ApiContext,
  request: FastifyRequest<{ Params: { topic: string; partition: number }; Body: TransferBody }>,
  reply: FastifyReply,
): Promise<PartitionDescription | FastifyReply> {
  const { topic: name, partition } = request.params;
  const { node: target, timeoutMs = TRANSFER_TIMEOUT_MS_DEFAULT } = request.body;
  const topic = await topicMeta(broker, name);
  const placement = broker.metadata.partition(name, partition);
  if (!placement.replicas.includes(target)) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `body/node: node ${target} is not a replica of ${name}/${partition} (replicas: ${placement.replicas.join(', ')})`,
    );
  }
  const status = broker.partitionStatus(placement.groupId);
  const leader = status?.leader ?? 0;
  if (leader === target) return describePartition(broker, topic, partition);
  const local = broker.localPartition(placement.groupId);
  if (local?.group.isLeader) {
    if (!broker.isPeerAlive(target)) {
      throw new BrokerError('NO_LEADER', `node ${target} is unreachable; leadership stays with ${leader}`);
    }
    return transferHere(broker, topic, partition, target, timeoutMs);
  }
  if (leader === 0 || leader === broker.nodeId) {
    throw new BrokerError('NO_LEADER', `${name}/${partition} has no leader right now; retry shortly`);
  }
  return forwardRequest(forwarder, request, reply, leader, request.body);
}

export function leadershipRoutes(context: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.post<{ Params: { topic: string; partition: number }; Body: TransferBody }>(
      '/v1/topics/:topic/partitions/:partition/leader',
      {
        schema: {
          summary: "Move a partition's leadership to one of its replicas; answers once it leads",
          params: partitionParamsSchema,
          body: transferBodySchema,
          response: { 200: partitionDescriptionSchema, ...errorResponses(400, 404, 503, 504) },
        },
      },
      (request, reply) => handleTransfer(context, request, reply),
    );
  };
}

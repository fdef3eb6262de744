// Moving a partition's leadership to a chosen replica. The request goes to the current leader
// (forwarded if this node is not it), whose Raft core brings the target up to date and tells it
// to campaign; the answer waits, bounded, until this node sees the target lead.

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { Broker, TopicMeta } from '../../broker/facade.js';
import type { PartitionDescription } from '../../wire/types.js';
import type { ApiContext } from '../context.js';
import { hopsOf, partitionLeaderOf, relayTo } from '../forward.js';
import { topicMeta } from '../params.js';
import { errorResponses, partitionDescriptionSchema, partitionParamsSchema } from '../schemas.js';
import { describeTopic } from './topics.js';

/** How long the answer waits for the new leader by default, and at most. */
export const TRANSFER_TIMEOUT_MS_DEFAULT = 10_000;
export const TRANSFER_TIMEOUT_MS_MAX = 60_000;

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

function describePartition(broker: Broker, topic: TopicMeta, partition: number): PartitionDescription {
  return describeTopic(broker, topic).partitions[partition]!;
}

async function handleTransfer(
  context: ApiContext,
  request: FastifyRequest<{ Params: { topic: string; partition: number }; Body: TransferBody }>,
  reply: FastifyReply,
): Promise<PartitionDescription | FastifyReply> {
  const { broker } = context;
  const { topic: name, partition } = request.params;
  const { node: target, timeoutMs = TRANSFER_TIMEOUT_MS_DEFAULT } = request.body;
  const topic = await topicMeta(broker, name);
  const placement = broker.partition(name, partition);
  if (!placement.replicas.includes(target)) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `body/node: node ${target} is not a replica of ${name}/${partition} (replicas: ${placement.replicas.join(', ')})`,
    );
  }
  if (broker.partitionStatus(placement.groupId)?.leader === target) {
    return describePartition(broker, topic, partition);
  }
  if (broker.leadsPartition(placement.groupId)) {
    await broker.moveLeadership(placement.groupId, target, timeoutMs);
    return describePartition(broker, topic, partition);
  }
  const leader = partitionLeaderOf(broker, placement.groupId, `${name}/${partition}`, hopsOf(request));
  return relayTo(context, request, reply, leader, request.body);
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

// Offset lookup by time: the first committed record at or after a timestamp (Kafka's ListOffsets
// by timestamp; the server side of `raftlog tail --offset @TIMESTAMP`). Any replica answers from
// its own copy, as fetch with consistency=local does; a node without one asks one that has it.

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OffsetForTimeResponse } from '../../wire/types.js';
import type { ApiContext } from '../context.js';
import { leaderOrReplicaOf, relayTo } from '../forward.js';
import { placementOf, topicMeta } from '../params.js';
import { errorResponses, partitionParamsSchema, TIMESTAMP_MS_MAX } from '../schemas.js';

interface OffsetForTimeQuery {
  timestamp: number;
}

const offsetForTimeQuerySchema = {
  type: 'object',
  properties: {
    timestamp: { type: 'integer', minimum: 0, maximum: TIMESTAMP_MS_MAX },
  },
  required: ['timestamp'],
  additionalProperties: false,
} as const;

const offsetForTimeResponseSchema = {
  type: 'object',
  properties: {
    offset: { type: 'integer' },
    timestamp: { type: ['integer', 'null'] },
  },
  required: ['offset', 'timestamp'],
} as const;

async function handleOffsetForTime(
  context: ApiContext,
  request: FastifyRequest<{ Params: { topic: string; partition: number }; Querystring: OffsetForTimeQuery }>,
  reply: FastifyReply,
): Promise<OffsetForTimeResponse | FastifyReply> {
  const { broker } = context;
  const { topic: name, partition } = request.params;
  const placement = placementOf(await topicMeta(broker, name), partition);
  if (!broker.hasReplica(placement.groupId)) {
    return relayTo(context, request, reply, leaderOrReplicaOf(broker, placement, `${name}/${partition}`));
  }
  return broker.offsetForTime(placement.groupId, request.query.timestamp);
}

export function offsetRoutes(context: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get<{ Params: { topic: string; partition: number }; Querystring: OffsetForTimeQuery }>(
      '/v1/topics/:topic/partitions/:partition/offsets',
      {
        schema: {
          summary: "The first committed record at or after a time, from this node's replica",
          params: partitionParamsSchema,
          querystring: offsetForTimeQuerySchema,
          response: { 200: offsetForTimeResponseSchema, ...errorResponses(400, 404, 503) },
        },
      },
      (request, reply) => handleOffsetForTime(context, request, reply),
    );
  };
}

// The cluster view and the health probes.

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { ClusterResponse } from '../../wire/types.js';
import type { ApiContext } from '../context.js';
import { sendError } from '../error-reply.js';
import { clusterResponseSchema, errorResponses } from '../schemas.js';

export function clusterRoutes({ broker }: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/v1/cluster',
      {
        schema: {
          summary: 'Nodes, their liveness, and the metadata leader',
          response: { 200: clusterResponseSchema },
        },
      },
      async (): Promise<ClusterResponse> => ({
        clusterId: broker.clusterId,
        nodes: [...broker.peers].map(([id, url]) => ({ id, url, alive: broker.isPeerAlive(id) })),
        metadataLeader: broker.metadataLeader(),
      }),
    );

    app.get(
      '/healthz',
      {
        schema: {
          summary: 'The process serves',
          response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
        },
      },
      async () => ({ status: 'ok' }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          summary: 'This node caught up on metadata and every local partition has a known leader',
          response: {
            200: { type: 'object', properties: { status: { type: 'string' } } },
            ...errorResponses(503),
          },
        },
      },
      async (_request, reply) => {
        if (broker.isReady()) return { status: 'ready' };
        return sendError(
          reply,
          new BrokerError('NOT_READY', 'not ready: metadata or a local partition has no leader yet'),
        );
      },
    );
  };
}

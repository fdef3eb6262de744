// Node-to-node routes that are not part of the client contract: leadership announcements.

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { fromTuple, GOSSIP_PATH, type StatusTuple } from '../../broker/leadership.js';
import type { ApiContext } from '../context.js';

const announcementSchema = {
  type: 'object',
  properties: {
    from: { type: 'integer' },
    statuses: {
      type: 'array',
      maxItems: 1_000_000,
      items: { type: 'array', items: { type: 'number' }, minItems: 5, maxItems: 5 },
    },
  },
  required: ['from', 'statuses'],
} as const;

export function internalRoutes({ broker }: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.post<{ Body: { from: number; statuses: StatusTuple[] } }>(
      GOSSIP_PATH,
      {
        schema: {
          summary: 'Internal: partition leaders announce themselves to peers',
          body: announcementSchema,
          hide: true,
        },
      },
      async (request, reply) => {
        broker.receiveAnnouncements(request.body.statuses.map(fromTuple));
        return reply.code(204).send();
      },
    );
  };
}

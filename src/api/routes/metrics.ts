// GET /metrics (Prometheus text), and the hook that counts and times produce and fetch requests.
// The plugin is not encapsulated (skip-override, as fastify-plugin does), so its onResponse hook
// sees the routes of the other plugins.

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ApiContext } from '../context.js';
import { NodeMetrics, operationOf } from '../metrics.js';

export function metricsRoutes({ broker, gate }: ApiContext): FastifyPluginAsync {
  // Built now, before the node starts its groups, so no early election or commit goes unseen.
  const metrics = new NodeMetrics(broker, gate ?? null);
  const plugin: FastifyPluginAsync = async (app: FastifyInstance) => {
    app.addHook('onResponse', async (request, reply) => {
      const operation = operationOf(request.method, request.routeOptions.url);
      if (operation === undefined) return;
      const topic = (request.params as { topic?: string } | undefined)?.topic;
      metrics.observeRequest(operation, topic, reply.statusCode, reply.elapsedTime / 1000);
    });

    app.get(
      '/metrics',
      { schema: { summary: 'Prometheus metrics of this node (text exposition format)', hide: false } },
      async (_request, reply) => {
        const text = await metrics.metrics();
        return reply.type(metrics.contentType).send(text);
      },
    );
  };
  Object.assign(plugin, { [Symbol.for('skip-override')]: true });
  return plugin;
}

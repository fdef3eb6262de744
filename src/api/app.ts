// The HTTP API of one node: a fastify instance with a plugin per resource, one error handler
// that turns every failure into the contract's error body, and the node header on every reply.

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv, type ValidateFunction } from 'ajv';
import Fastify, { type FastifyError, LogController } from 'fastify';
import type { Logger } from 'pino';
import { BrokerError } from '../broker/errors.js';
import { NODE_HEADER } from '../wire/types.js';
import type { ApiContext } from './context.js';
import { sendError, toBrokerError } from './error-reply.js';
import { allowedMethods, clientErrorHandler, installHttpEdge } from './http-edge.js';
import { HTTP_LIMITS, type HttpLimits, nodeServerOptions } from './http-limits.js';
import { registerStrictJsonParser } from './json-body.js';
import { clusterRoutes } from './routes/cluster.js';
import { groupMemberRoutes } from './routes/group-members.js';
import { groupRoutes } from './routes/groups.js';
import { internalRoutes } from './routes/internal.js';
import { leadershipRoutes } from './routes/leadership.js';
import { metricsRoutes } from './routes/metrics.js';
import { offsetRoutes } from './routes/offsets.js';
import { recordRoutes } from './routes/records.js';
import { streamRoutes } from './routes/streams.js';
import { topicRoutes } from './routes/topics.js';
import { compileTextValidator } from './text-validator.js';

/** Longest path parameter the router accepts; names are at most 249 characters. */
const PATH_PARAM_BYTES_MAX = 512;

/** `limits` bound the receiving of each request (docs/operations.md, "Limits and timeouts"). */
export function buildApp(context: ApiContext, logger: Logger, limits: HttpLimits = HTTP_LIMITS) {
  const edge = { nodeId: context.broker.nodeId, limits };
  const app = Fastify({
    loggerInstance: logger,
    // Nothing is logged per request: that would be per record on the produce path.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.requestBytesMax,
    // Timeouts on receiving a request, never on answering it (long-polls, streams, forwards).
    http: nodeServerOptions(limits),
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveIdleTimeoutMs,
    // No socket idle timeout: a quiet long-poll or stream is not a stalled request.
    connectionTimeout: 0,
    // Node's parser errors and timeouts answer in the contract's shape, not fastify's.
    clientErrorHandler: clientErrorHandler({ ...edge, logger }),
    // Topic and group names may be 249 characters (the router's default limit is 100).
    routerOptions: { maxParamLength: PATH_PARAM_BYTES_MAX },
    // Errors the router raises before any route runs answer in the contract's shape too.
    frameworkErrors: (error, _request, reply) => {
      reply.header(NODE_HEADER, String(context.broker.nodeId));
      sendError(reply, new BrokerError('INVALID_REQUEST', error.message));
    },
  });
  // Query strings and path parameters are text: their numbers are converted, from canonical
  // decimal only (src/api/text-validator.ts). JSON bodies are not: a null or boolean `value` is
  // an INVALID_REQUEST, never silently the string "" or "true".
  const bodyValidator = new Ajv({ coerceTypes: false, useDefaults: true, strict: false });
  const textValidator = new Ajv({ coerceTypes: 'array', useDefaults: true, strict: false });
  // Compiled at a route's first request rather than at start: compiling every route's schemas
  // took about a tenth of a node's start.
  app.setValidatorCompiler(({ schema, httpPart }) =>
    compiledOnFirstUse(() =>
      httpPart === 'body' ? bodyValidator.compile(schema) : compileTextValidator(textValidator, schema),
    ),
  );
  // Bodies must be UTF-8, nest at most 32 deep, name each property once, and hold only canonical
  // safe integers (src/api/json-body.ts).
  registerStrictJsonParser(app);
  const nodeId = String(context.broker.nodeId);
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header(NODE_HEADER, nodeId);
    done(null, payload);
  });
  installHttpEdge(app, edge);
  context.gate?.install(app);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const coded = toBrokerError(error);
    if (coded.code === 'INTERNAL') request.log.error({ err: error }, 'request failed');
    sendError(reply, coded);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allow = allowedMethods(app, request.url);
    if (allow.length === 0)
      return sendError(reply, new BrokerError('NOT_FOUND', `no route ${request.method} ${path}`));
    reply.header('allow', allow.join(', '));
    sendError(
      reply,
      new BrokerError('METHOD_NOT_ALLOWED', `${path} takes ${allow.join(', ')}, not ${request.method}`),
    );
  });
  // The OpenAPI document is generated from the route schemas: /docs (UI) and /docs/json.
  app.register(swagger, {
    openapi: {
      info: { title: 'raftlog', version: '1', description: 'A replicated, append-only log broker' },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.register(topicRoutes(context));
  app.register(recordRoutes(context));
  app.register(offsetRoutes(context));
  app.register(clusterRoutes(context));
  app.register(internalRoutes(context));
  app.register(streamRoutes(context));
  app.register(groupRoutes(context));
  app.register(groupMemberRoutes(context));
  app.register(leadershipRoutes(context));
  app.register(metricsRoutes(context));
  return app;
}

/** A validator that compiles itself when first called; its `errors` are those of the last call. */
function compiledOnFirstUse(compile: () => ValidateFunction): ValidateFunction {
  let compiled: ValidateFunction | null = null;
  const validate = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    compiled ??= compile();
    const valid = compiled(data, context);
    validate.errors = compiled.errors;
    return valid;
  }) as ValidateFunction;
  return validate;
}

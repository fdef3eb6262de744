// Record streams: a partition's (or every partition's) committed records pushed as they commit,
// as NDJSON or Server-Sent Events, until the client disconnects. A partition with a replica on
// this node is served from its local copy; one without is relayed from a node that holds one.

import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { ReplicaTail, TopicMeta } from '../../broker/facade.js';
import { splitLines } from '../../wire/lines.js';
import { type Encoding, MAX_REQUEST_BYTES } from '../../wire/types.js';
import type { ApiContext } from '../context.js';
import { FORWARD_HOPS_MAX, hopsOf, liveReplicaOf, streamFrom } from '../forward.js';
import { parseOffset, placementOf, topicMeta } from '../params.js';
import {
  errorResponses,
  OFFSET_QUERY_PATTERN,
  partitionParamsSchema,
  topicParamsSchema,
} from '../schemas.js';
import { formatOf, StreamWriter } from '../stream-writer.js';

interface StreamQuery {
  offset?: string;
  encoding?: Encoding;
}

export const streamQuerySchema = {
  type: 'object',
  properties: {
    offset: { type: 'string', pattern: OFFSET_QUERY_PATTERN },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
  },
  additionalProperties: false,
} as const;

/** Where one partition's records come from: this node's replica, or a relay from another's. */
type Source =
  | { kind: 'local'; partition: number; tail: ReplicaTail }
  | { kind: 'relay'; partition: number; body: Readable };

/** Opens the partition's stream on a node that holds a replica (this node holds none). */
async function openRelay(
  context: ApiContext,
  request: FastifyRequest<{ Querystring: StreamQuery }>,
  topic: TopicMeta,
  partition: number,
): Promise<Source> {
  const name = `${topic.name}/${partition}`;
  const hops = hopsOf(request);
  if (hops >= FORWARD_HOPS_MAX) throw new BrokerError('NO_LEADER', `no replica of ${name} is reachable`);
  const target = liveReplicaOf(context.broker, topic.partitions[partition]!, name);
  const query = new URLSearchParams();
  if (request.query.offset !== undefined) query.set('offset', request.query.offset);
  if (request.query.encoding !== undefined) query.set('encoding', request.query.encoding);
  const url = `/v1/topics/${encodeURIComponent(topic.name)}/partitions/${partition}/stream?${query}`;
  return { kind: 'relay', partition, body: await streamFrom(context, target, { url, hops }) };
}

/** Resolves every partition's start before anything is sent: errors answer as plain errors. */
async function openSources(
  context: ApiContext,
  request: FastifyRequest<{ Querystring: StreamQuery }>,
  topic: TopicMeta,
  partitions: number[],
): Promise<Source[]> {
  const { broker } = context;
  const offset = parseOffset(request.query.offset) ?? 'latest';
  const sources: Source[] = [];
  try {
    for (const partition of partitions) {
      const { groupId } = topic.partitions[partition]!;
      if (broker.hasReplica(groupId)) {
        sources.push({ kind: 'local', partition, tail: broker.tail(groupId, offset) });
      } else {
        sources.push(await openRelay(context, request, topic, partition));
      }
    }
  } catch (error) {
    for (const source of sources) if (source.kind === 'relay') source.body.destroy();
    throw error;
  }
  return sources;
}

/** Pumps one source into the writer, pausing while the socket is full. */
async function pump(source: Source, writer: StreamWriter): Promise<void> {
  if (source.kind === 'local') {
    for await (const records of source.tail.chunks(writer.signal)) {
      if (!writer.writeRecords(records, source.partition)) await writer.drained();
      if (writer.closed) return;
    }
    return;
  }
  const stopRelay = () => source.body.destroy();
  writer.signal.addEventListener('abort', stopRelay, { once: true });
  try {
    for await (const line of splitLines(source.body, MAX_REQUEST_BYTES)) {
      if (line === '') continue;
      if (!writer.writeJsonLine(line)) await writer.drained();
      if (writer.closed) return;
    }
  } catch (error) {
    if (!writer.closed) throw error;
  } finally {
    writer.signal.removeEventListener('abort', stopRelay);
  }
}

/** The streams this app is writing, and whether it has begun to close. */
interface OpenStreams {
  writers: Set<StreamWriter>;
  closing: boolean;
}

async function handleStream(
  context: ApiContext,
  streams: OpenStreams,
  request: FastifyRequest<{ Params: { topic: string; partition?: number }; Querystring: StreamQuery }>,
  reply: FastifyReply,
): Promise<void> {
  const topic = await topicMeta(context.broker, request.params.topic);
  const { partition } = request.params;
  if (partition !== undefined) placementOf(topic, partition);
  const partitions = partition !== undefined ? [partition] : topic.partitions.map((_, i) => i);
  const sources = await openSources(context, request, topic, partitions);
  if (streams.closing) {
    // The app began to close while the sources opened (a relay waits for another node): a
    // stream started now would never be ended, and would hold the close forever.
    for (const source of sources) if (source.kind === 'relay') source.body.destroy();
    throw new BrokerError('BUSY', `node ${context.broker.nodeId} is shutting down; retry on another node`);
  }
  const writer = new StreamWriter(
    reply.raw,
    formatOf(request.headers.accept),
    request.query.encoding ?? 'utf8',
  );
  reply.hijack();
  streams.writers.add(writer);
  writer.open(context.broker.nodeId);
  const pumps = sources.map((source) => pump(source, writer));
  // The others stop on their own once the writer closes; their late failures mean nothing.
  for (const pumping of pumps) pumping.catch(() => undefined);
  try {
    // One source ending (its replica's group closed, retention passed it, a relay broke) ends
    // the stream: the reader reconnects from its offsets rather than silently missing a partition.
    await Promise.race(pumps);
    writer.end();
  } catch (error) {
    if (!writer.closed) request.log.warn({ err: error }, 'stream failed');
    // Headers are gone: cutting the connection is how the reader learns the stream broke.
    reply.raw.destroy();
  } finally {
    streams.writers.delete(writer);
  }
}

export function streamRoutes(context: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const streams: OpenStreams = { writers: new Set(), closing: false };
    // Open streams would keep the server's close waiting forever: end them first, and refuse
    // the ones still opening their sources.
    app.addHook('preClose', (done) => {
      streams.closing = true;
      for (const writer of streams.writers) writer.endForShutdown();
      streams.writers.clear();
      done();
    });
    const response = { 200: { description: 'application/x-ndjson or text/event-stream' } };

    app.get<{ Params: { topic: string; partition: number }; Querystring: StreamQuery }>(
      '/v1/topics/:topic/partitions/:partition/stream',
      {
        schema: {
          summary:
            "Stream a partition's records as they commit (NDJSON, or SSE with accept: text/event-stream)",
          params: partitionParamsSchema,
          querystring: streamQuerySchema,
          response: { ...response, ...errorResponses(400, 404, 416, 503) },
        },
      },
      (request, reply) => handleStream(context, streams, request, reply),
    );

    app.get<{ Params: { topic: string }; Querystring: StreamQuery }>(
      '/v1/topics/:topic/stream',
      {
        schema: {
          summary: "Stream every partition's records as they commit, merged (NDJSON or SSE)",
          params: topicParamsSchema,
          querystring: streamQuerySchema,
          response: { ...response, ...errorResponses(400, 404, 416, 503) },
        },
      },
      (request, reply) => handleStream(context, streams, request, reply),
    );
  };
}

// Produce and fetch. Produce splits a request by partition (explicit, by key with Kafka's
// murmur2, or round-robin), proposes on the leader of each (here, or forwarded), and answers
// with offsets in the order of the records. Fetch answers from this node's replica when it has
// one, else from the partition's leader.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { Broker, ProduceInput, ProducerInfo, TopicMeta } from '../../broker/facade.js';
import { partitionForKey } from '../../broker/partitioner.js';
import { FETCH_BINARY_CONTENT_TYPE, fetchBinaryParts } from '../../wire/fetch-binary.js';
import {
  DEFAULT_FETCH_LIMIT,
  DEFAULT_FETCH_MAX_BYTES,
  DEFAULT_PRODUCE_TIMEOUT_MS,
  type Encoding,
  type ProduceRecord,
  type ProduceRequest,
  type ProduceResponse,
} from '../../wire/types.js';
import type { ApiContext } from '../context.js';
import { fetchAnswerJson } from '../fetch-json.js';
import { ask, hopsOf, leaderOrReplicaOf, partitionLeaderOf, relayTo, SERVED_BY_HEADER } from '../forward.js';
import { parseOffset, placementOf, topicMeta } from '../params.js';
import { decodeRecord } from '../record-json.js';
import {
  errorResponses,
  fetchQuerySchema,
  fetchResponseSchema,
  partitionParamsSchema,
  produceBodySchema,
  produceResponseSchema,
  topicParamsSchema,
} from '../schemas.js';

/** What fastify itself names a JSON body. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

interface PartitionShare {
  partition: number;
  /** Positions of this partition's records in the request. */
  positions: number[];
  records: ProduceInput[];
}

interface FetchQuery {
  offset?: string;
  limit?: number;
  maxBytes?: number;
  waitMs?: number;
  encoding?: Encoding;
  consistency?: 'local' | 'linearizable';
  minOffset?: number;
}

function splitByPartition(broker: Broker, topic: TopicMeta, body: ProduceRequest): PartitionShare[] {
  const encoding = body.encoding ?? 'utf8';
  const count = topic.partitions.length;
  const shares = new Map<number, PartitionShare>();
  body.records.forEach((wire, position) => {
    const record = decodeRecord(wire, encoding, position);
    let partition = wire.partition;
    if (partition === undefined) {
      partition = record.key ? partitionForKey(record.key, count) : broker.nextRoundRobin(topic.name, count);
    }
    placementOf(topic, partition);
    let share = shares.get(partition);
    if (!share) {
      share = { partition, positions: [], records: [] };
      shares.set(partition, share);
    }
    share.positions.push(position);
    share.records.push(record);
  });
  return [...shares.values()];
}

interface ShareResult {
  baseOffset: number;
  /** The producer sequence was committed before: these are the original offsets. */
  duplicate: boolean;
  /** The node that appended the share (this one, or the leader it was forwarded to). */
  servedBy: number;
}

/** Produces one partition's share: here if this node leads it, else on its leader. */
async function produceShare(
  context: ApiContext,
  topic: TopicMeta,
  share: PartitionShare,
  body: ProduceRequest,
  hops: number,
): Promise<ShareResult> {
  const { broker } = context;
  const { groupId } = topic.partitions[share.partition]!;
  if (broker.leadsPartition(groupId)) {
    const producer: ProducerInfo | null = body.producer ?? null;
    const timeoutMs = body.timeoutMs ?? DEFAULT_PRODUCE_TIMEOUT_MS;
    const result = await broker.produce(groupId, { records: share.records, producer, timeoutMs });
    return { baseOffset: result.baseOffset, duplicate: result.duplicate, servedBy: broker.nodeId };
  }
  const leader = partitionLeaderOf(broker, groupId, `${topic.name}/${share.partition}`, hops);
  // Built only here: a copy of every record per request would be garbage on the leader's path.
  const records: ProduceRecord[] = share.positions.map((position) => ({
    ...body.records[position]!,
    partition: share.partition,
  }));
  const forwarded: ProduceRequest = { ...body, records };
  const answer = await ask<ProduceResponse>(context, leader, {
    method: 'POST',
    url: `/v1/topics/${encodeURIComponent(topic.name)}/records`,
    body: JSON.stringify(forwarded),
    hops,
  });
  return { baseOffset: answer.offsets[0]!.offset, duplicate: answer.duplicate, servedBy: leader };
}

async function handleProduce(
  context: ApiContext,
  request: FastifyRequest<{ Params: { topic: string }; Body: ProduceRequest }>,
  reply: FastifyReply,
): Promise<ProduceResponse> {
  const { broker } = context;
  const topic = await topicMeta(broker, request.params.topic);
  const shares = splitByPartition(broker, topic, request.body);
  if (request.body.producer && shares.length > 1) {
    throw new BrokerError(
      'INVALID_REQUEST',
      'producer: an idempotent request must write to one partition (its sequence is counted per partition)',
    );
  }
  const hops = hopsOf(request);
  const results = await Promise.all(
    shares.map((share) => produceShare(context, topic, share, request.body, hops)),
  );
  const offsets = new Array<{ partition: number; offset: number }>(request.body.records.length);
  shares.forEach((share, i) => {
    share.positions.forEach((position, k) => {
      offsets[position] = { partition: share.partition, offset: results[i]!.baseOffset + k };
    });
  });
  const servedBy = [...new Set(results.map((r) => r.servedBy))];
  if (servedBy.some((id) => id !== broker.nodeId)) reply.header(SERVED_BY_HEADER, servedBy.join(','));
  // Only an idempotent request (one partition, one share) can be a duplicate.
  return { offsets, duplicate: results.some((r) => r.duplicate) };
}

async function handleFetch(
  context: ApiContext,
  request: FastifyRequest<{ Params: { topic: string; partition: number }; Querystring: FetchQuery }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { broker } = context;
  const { topic: name, partition } = request.params;
  const placement = placementOf(await topicMeta(broker, name), partition);
  if (!broker.hasReplica(placement.groupId)) {
    return relayTo(context, request, reply, leaderOrReplicaOf(broker, placement, `${name}/${partition}`));
  }
  const query = request.query;
  // A client gone before its answer ends a long-poll's wait. 'close' also comes after every
  // answer sent: aborting then would build an AbortError (a stack trace) per fetch for nothing.
  const abort = new AbortController();
  request.raw.once('close', () => {
    if (!reply.raw.writableEnded) abort.abort();
  });
  const params = {
    offset: parseOffset(query.offset),
    limit: query.limit ?? DEFAULT_FETCH_LIMIT,
    maxBytes: query.maxBytes ?? DEFAULT_FETCH_MAX_BYTES,
    waitMs: query.waitMs ?? 0,
    consistency: query.consistency ?? 'local',
    minOffset: query.minOffset,
  } as const;
  if (request.headers.accept?.includes(FETCH_BINARY_CONTENT_TYPE)) {
    // The stored batches go out as they are, not copied into one buffer: a fetch of 1 MiB
    // allocated twice that, and the garbage collector's share of serving it grew with it.
    const { parts, byteLength } = fetchBinaryParts(
      await broker.fetchBatches(placement.groupId, params, abort.signal),
    );
    reply.header('content-length', byteLength).type(FETCH_BINARY_CONTENT_TYPE);
    return reply.send(Readable.from(parts, { objectMode: false }));
  }
  const result = await broker.fetch(placement.groupId, params, abort.signal);
  // The body is written as text from the stored bytes (fetch-json.ts): an object per record and
  // the schema's serializer cost the node microseconds per record. The schema stays, for the docs.
  return reply.type(JSON_CONTENT_TYPE).send(fetchAnswerJson(result, query.encoding ?? 'utf8'));
}

export function recordRoutes(context: ApiContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.post<{ Params: { topic: string }; Body: ProduceRequest }>(
      '/v1/topics/:topic/records',
      {
        schema: {
          summary: 'Produce records; answers once every record is committed',
          params: topicParamsSchema,
          body: produceBodySchema,
          response: { 200: produceResponseSchema, ...errorResponses(400, 404, 409, 413, 503, 504) },
        },
      },
      (request, reply) => handleProduce(context, request, reply),
    );

    app.get<{ Params: { topic: string; partition: number }; Querystring: FetchQuery }>(
      '/v1/topics/:topic/partitions/:partition/records',
      {
        schema: {
          summary: "Fetch committed records from this node's replica",
          params: partitionParamsSchema,
          querystring: fetchQuerySchema,
          response: { 200: fetchResponseSchema, ...errorResponses(400, 404, 416, 503) },
        },
      },
      (request, reply) => handleFetch(context, request, reply),
    );
  };
}

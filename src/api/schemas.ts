// JSON schemas of the routes: they validate input, serialize output (fast-json-stringify), and
// generate the OpenAPI document. Shapes follow docs/api.md and src/wire/types.ts.

import { FETCH_LIMIT_MAX } from '../wire/types.js';

// Integer bounds (docs/api.md, "Integers and text"). Every integer of the API passes through a JavaScript
// number in the broker, so none may exceed 2^53 - 1 (Kafka's int64 fields, cut to what a double
// holds exactly); a body's larger integers are refused by the JSON parser before any schema runs.

/** Partitions are Kafka's int32. */
export const PARTITION_MAX = 2_147_483_647;
/** Offsets, retention, and any other 64-bit field: what a JavaScript number holds exactly. */
export const SAFE_INTEGER_MAX = Number.MAX_SAFE_INTEGER;
/**
 * The last millisecond of year 9999 (9999-12-31T23:59:59.999Z): the window for record timestamps
 * is 0 to this. Every date in it prints as a four-digit-year ISO string, and it is far below
 * 2^53 - 1, so a timestamp is stored and shown exactly as sent.
 */
export const TIMESTAMP_MS_MAX = 253_402_300_799_999;
/** An offset in a query: `earliest`, `latest`, or canonical decimal (at most 16 digits, checked further). */
export const OFFSET_QUERY_PATTERN = '^(earliest|latest|0|[1-9][0-9]{0,15})$';

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
      additionalProperties: true,
    },
  },
  required: ['error'],
} as const;

const topicConfigSchema = {
  type: 'object',
  properties: {
    persistence: { type: 'string', enum: ['sync', 'async', 'memory'] },
    retentionMs: { type: 'integer', minimum: -1, maximum: SAFE_INTEGER_MAX },
    retentionBytes: { type: 'integer', minimum: -1, maximum: SAFE_INTEGER_MAX },
  },
} as const;

export const partitionDescriptionSchema = {
  type: 'object',
  properties: {
    partition: { type: 'integer' },
    leader: { type: ['integer', 'null'] },
    term: { type: 'integer' },
    replicas: { type: 'array', items: { type: 'integer' } },
    logStartOffset: { type: 'integer' },
    highWatermark: { type: 'integer' },
  },
  required: ['partition', 'leader', 'term', 'replicas', 'logStartOffset', 'highWatermark'],
} as const;

export const topicDescriptionSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    config: { ...topicConfigSchema, required: ['persistence', 'retentionMs', 'retentionBytes'] },
    partitions: { type: 'array', items: partitionDescriptionSchema },
  },
  required: ['name', 'config', 'partitions'],
} as const;

export const createTopicBodySchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    partitions: { type: 'integer', minimum: 1, maximum: 10_000 },
    replicationFactor: { type: 'integer' },
    config: { ...topicConfigSchema, additionalProperties: false },
  },
  required: ['name'],
  additionalProperties: false,
} as const;

export const topicParamsSchema = {
  type: 'object',
  properties: { topic: { type: 'string' } },
  required: ['topic'],
} as const;

export const partitionParamsSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    partition: { type: 'integer', minimum: 0, maximum: PARTITION_MAX },
  },
  required: ['topic', 'partition'],
} as const;

export const produceBodySchema = {
  type: 'object',
  properties: {
    records: {
      type: 'array',
      minItems: 1,
      maxItems: 100_000,
      items: {
        type: 'object',
        properties: {
          key: { type: ['string', 'null'] },
          value: { type: 'string' },
          headers: {
            type: ['object', 'null'],
            additionalProperties: { type: ['string', 'null'] },
          },
          partition: { type: 'integer', minimum: 0, maximum: PARTITION_MAX },
          timestamp: { type: 'integer', minimum: 0, maximum: TIMESTAMP_MS_MAX },
        },
        required: ['value'],
        additionalProperties: false,
      },
    },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    producer: {
      type: 'object',
      properties: {
        id: { type: 'string', minLength: 1, maxLength: 255 },
        epoch: { type: 'integer', minimum: 0, maximum: 4_294_967_295 },
        sequence: { type: 'integer', minimum: 0, maximum: 4_294_967_295 },
      },
      required: ['id', 'epoch', 'sequence'],
      additionalProperties: false,
    },
    timeoutMs: { type: 'integer', minimum: 1, maximum: 300_000 },
  },
  required: ['records'],
  additionalProperties: false,
} as const;

export const produceResponseSchema = {
  type: 'object',
  properties: {
    offsets: {
      type: 'array',
      items: {
        type: 'object',
        properties: { partition: { type: 'integer' }, offset: { type: 'integer' } },
        required: ['partition', 'offset'],
      },
    },
    duplicate: { type: 'boolean' },
  },
  required: ['offsets', 'duplicate'],
} as const;

export const fetchQuerySchema = {
  type: 'object',
  properties: {
    offset: { type: 'string', pattern: OFFSET_QUERY_PATTERN },
    limit: { type: 'integer', minimum: 1, maximum: FETCH_LIMIT_MAX },
    maxBytes: { type: 'integer', minimum: 1, maximum: 64 * 1024 * 1024 },
    waitMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    consistency: { type: 'string', enum: ['local', 'linearizable'] },
    minOffset: { type: 'integer', minimum: 0, maximum: SAFE_INTEGER_MAX },
  },
  additionalProperties: false,
} as const;

export const fetchedRecordSchema = {
  type: 'object',
  properties: {
    offset: { type: 'integer' },
    partition: { type: 'integer' },
    key: { type: ['string', 'null'] },
    value: { type: 'string' },
    headers: { type: ['object', 'null'], additionalProperties: { type: ['string', 'null'] } },
    timestamp: { type: 'integer' },
  },
  required: ['offset', 'value', 'timestamp'],
} as const;

export const fetchResponseSchema = {
  type: 'object',
  properties: {
    records: { type: 'array', items: fetchedRecordSchema },
    nextOffset: { type: 'integer' },
    highWatermark: { type: 'integer' },
    logStartOffset: { type: 'integer' },
  },
  required: ['records', 'nextOffset', 'highWatermark', 'logStartOffset'],
} as const;

export const clusterResponseSchema = {
  type: 'object',
  properties: {
    clusterId: { type: 'string' },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'integer' }, url: { type: 'string' }, alive: { type: 'boolean' } },
        required: ['id', 'url', 'alive'],
      },
    },
    metadataLeader: { type: ['integer', 'null'] },
  },
  required: ['clusterId', 'nodes', 'metadataLeader'],
} as const;

/** Error responses a route may give, for the OpenAPI document and the docs test. */
export function errorResponses(...statuses: number[]): Record<number, typeof errorSchema> {
  const out: Record<number, typeof errorSchema> = {};
  for (const status of statuses) out[status] = errorSchema;
  return out;
}

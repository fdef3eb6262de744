// Consumer-group offsets: commit and read. Commits are metadata commands (replicated and durable
// through the metadata Raft group), proposed on its leader (forwarded there from any other
// node), which first checks no offset is past its partition's high watermark; reads confirm
// with the metadata leader first, so a node never answers older than a commit acknowledged
// before the read. A commit that names a member (`memberId`, `generation`) is fenced: the
// state machine commits it only if that member owns every partition (membership.ts).

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { Broker, CommittedOffset, MetadataCommand } from '../../broker/facade.js';
import { validateTopicName } from '../../broker/metadata-state.js';
import type { ApiContext } from '../context.js';
import { hopsOf, metadataLeaderOf, relayTo } from '../forward.js';
import { checkBelowHighWatermarks } from '../high-watermark.js';
import { METADATA_SYNC_TIMEOUT_MS, topicMeta } from '../params.js';
import { errorResponses, PARTITION_MAX, SAFE_INTEGER_MAX } from '../schemas.js';

/** Group names follow the topic name rule: 1 to 249 chars of [a-zA-Z0-9._-], not '.' or '..'. */
export const GROUP_NAME_MAX_CHARS = 249;
const GROUP_NAME_PATTERN = /^[a-zA-Z0-9._-]+$/;
/** Offsets one commit may carry (one per partition of the topics a consumer reads). */
export const OFFSETS_PER_COMMIT_MAX = 10_000;
const METADATA_WRITE_TIMEOUT_MS = 10_000;

const groupOffsetSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    partition: { type: 'integer', minimum: 0, maximum: PARTITION_MAX },
    offset: { type: 'integer', minimum: 0, maximum: SAFE_INTEGER_MAX },
  },
  required: ['topic', 'partition', 'offset'],
  additionalProperties: false,
} as const;

const groupParamsSchema = {
  type: 'object',
  properties: { group: { type: 'string' } },
  required: ['group'],
} as const;

/** Member ids are the broker's (`m-` and 16 hex digits); longer is refused, anything else unknown. */
export const MEMBER_ID_MAX_CHARS = 128;

const commitBodySchema = {
  type: 'object',
  properties: {
    offsets: { type: 'array', minItems: 1, maxItems: OFFSETS_PER_COMMIT_MAX, items: groupOffsetSchema },
    memberId: { type: 'string', minLength: 1, maxLength: MEMBER_ID_MAX_CHARS },
    generation: { type: 'integer', minimum: 0, maximum: SAFE_INTEGER_MAX },
  },
  required: ['offsets'],
  // A fenced commit names both; an administrator's commit names neither.
  dependencies: { memberId: ['generation'], generation: ['memberId'] },
  additionalProperties: false,
} as const;

interface CommitBody {
  offsets: CommittedOffset[];
  memberId?: string;
  generation?: number;
}

const offsetsResponseSchema = {
  type: 'object',
  properties: { offsets: { type: 'array', items: groupOffsetSchema } },
  required: ['offsets'],
} as const;

export function validateGroupName(name: string): void {
  if (
    name.length < 1 ||
    name.length > GROUP_NAME_MAX_CHARS ||
    !GROUP_NAME_PATTERN.test(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `params/group '${name}' is invalid: use 1 to ${GROUP_NAME_MAX_CHARS} characters of [a-zA-Z0-9._-], not '.' or '..'`,
    );
  }
}

/**
 * A name no topic can have is INVALID_TOPIC_NAME, not UNKNOWN_TOPIC (the request is wrong, not
 * the cluster's state), with the field named.
 */
export function validateTopicField(topic: string, field: string): void {
  try {
    validateTopicName(topic);
  } catch (error) {
    throw new BrokerError('INVALID_TOPIC_NAME', `${field}: ${(error as Error).message}`);
  }
}

/** Every offset names an existing topic and partition (catching up on metadata if need be). */
async function validateOffsets(broker: Broker, offsets: readonly CommittedOffset[]): Promise<void> {
  for (const [index, { topic }] of offsets.entries())
    validateTopicField(topic, `body/offsets/${index}/topic`);
  for (const { topic, partition } of offsets) {
    await topicMeta(broker, topic);
    broker.partition(topic, partition);
  }
}

export function groupRoutes(context: ApiContext): FastifyPluginAsync {
  const { broker } = context;
  return async (app: FastifyInstance) => {
    app.put<{ Params: { group: string }; Body: CommitBody }>(
      '/v1/groups/:group/offsets',
      {
        schema: {
          summary: "Commit a consumer group's offsets (replicated through the metadata group)",
          params: groupParamsSchema,
          body: commitBodySchema,
          response: errorResponses(400, 404, 409, 416, 503, 504),
        },
      },
      async (request, reply) => {
        const group = request.params.group;
        validateGroupName(group);
        const { offsets, memberId, generation } = request.body;
        await validateOffsets(broker, offsets);
        if (!broker.isMetadataLeader()) {
          return relayTo(context, request, reply, metadataLeaderOf(broker), request.body);
        }
        // Checked by the node that proposes, so once per commit however it was routed.
        await checkBelowHighWatermarks(context, offsets, hopsOf(request));
        const command: MetadataCommand = {
          type: 'commitOffsets',
          group,
          offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
          ...(memberId !== undefined && generation !== undefined ? { member: { memberId, generation } } : {}),
        };
        // The state machine checks the topics again: one may have been deleted meanwhile.
        const result = await broker.proposeMetadata(command, METADATA_WRITE_TIMEOUT_MS);
        if (!result.ok) throw result.error;
        return reply.code(204).send();
      },
    );

    app.get<{ Params: { group: string }; Querystring: { topic?: string } }>(
      '/v1/groups/:group/offsets',
      {
        schema: {
          summary: "A consumer group's committed offsets, of one topic or all",
          params: groupParamsSchema,
          querystring: {
            type: 'object',
            properties: { topic: { type: 'string' } },
            additionalProperties: false,
          },
          response: { 200: offsetsResponseSchema, ...errorResponses(400, 404, 503) },
        },
      },
      async (request) => {
        const group = request.params.group;
        validateGroupName(group);
        const topic = request.query.topic;
        if (topic !== undefined) validateTopicField(topic, 'querystring/topic');
        await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
        if (topic !== undefined) broker.topic(topic);
        return { offsets: broker.groupOffsets(group, topic) };
      },
    );
  };
}

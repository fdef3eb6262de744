// Topics: create, list, describe, delete. Writes go to the metadata leader (forwarded if it is
// another node); reads answer from this node's metadata and leadership table.

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { BrokerError } from '../../broker/errors.js';
import type { Broker, MetadataCommand, TopicConfig, TopicMeta } from '../../broker/facade.js';
import { validateReplicationFactor, validateTopicName } from '../../broker/metadata-state.js';
import type { CreateTopicRequest, TopicDescription } from '../../wire/types.js';
import type { ApiContext } from '../context.js';
import { metadataLeaderOf, relayTo } from '../forward.js';
import { METADATA_SYNC_TIMEOUT_MS, topicMeta } from '../params.js';
import {
  createTopicBodySchema,
  errorResponses,
  topicDescriptionSchema,
  topicParamsSchema,
} from '../schemas.js';

/** Kafka's default retention: seven days. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
const METADATA_WRITE_TIMEOUT_MS = 10_000;
/** A new topic's answer waits this long for every partition to have a leader. */
const LEADERS_WAIT_MS = 10_000;

export function describeTopic(broker: Broker, topic: TopicMeta): TopicDescription {
  return {
    name: topic.name,
    config: topic.config,
    partitions: topic.partitions.map((p) => {
      const status = broker.partitionStatus(p.groupId);
      return {
        partition: p.partition,
        leader: status && status.leader !== 0 ? status.leader : null,
        term: status?.term ?? 0,
        replicas: p.replicas,
        logStartOffset: status?.logStartOffset ?? 0,
        highWatermark: status?.highWatermark ?? 0,
      };
    }),
  };
}

/** Runs a metadata command here if this node leads the metadata group; otherwise null. */
async function proposeIfLeader(
  broker: Broker,
  command: MetadataCommand,
): Promise<TopicMeta | undefined | null> {
  if (!broker.isMetadataLeader()) return null;
  const result = await broker.proposeMetadata(command, METADATA_WRITE_TIMEOUT_MS);
  if (!result.ok) throw result.error;
  return result.topic;
}

export function topicRoutes(context: ApiContext): FastifyPluginAsync {
  const { broker } = context;
  return async (app: FastifyInstance) => {
    app.post<{ Body: CreateTopicRequest }>(
      '/v1/topics',
      {
        schema: {
          summary: 'Create a topic',
          body: createTopicBodySchema,
          response: { 201: topicDescriptionSchema, ...errorResponses(400, 409, 503, 504) },
        },
      },
      async (request, reply) => {
        const body = request.body;
        validateTopicName(body.name);
        const replicationFactor = body.replicationFactor ?? Math.min(3, broker.peers.size);
        validateReplicationFactor(replicationFactor, broker.peers.size);
        if (broker.findTopic(body.name)) {
          throw new BrokerError('TOPIC_EXISTS', `topic '${body.name}' already exists`);
        }
        const config: TopicConfig = {
          persistence: body.config?.persistence ?? broker.defaultPersistence,
          retentionMs: body.config?.retentionMs ?? DEFAULT_RETENTION_MS,
          retentionBytes: body.config?.retentionBytes ?? -1,
        };
        const command: MetadataCommand = {
          type: 'createTopic',
          name: body.name,
          partitions: body.partitions ?? 1,
          replicationFactor,
          config,
        };
        const topic = await proposeIfLeader(broker, command);
        if (topic === null) return relayTo(context, request, reply, metadataLeaderOf(broker), body);
        await broker.waitForLeaders(body.name, LEADERS_WAIT_MS);
        return reply.code(201).send(describeTopic(broker, topic ?? broker.topic(body.name)));
      },
    );

    app.get(
      '/v1/topics',
      {
        schema: {
          summary: 'List topics',
          response: {
            200: { type: 'object', properties: { topics: { type: 'array', items: topicDescriptionSchema } } },
          },
        },
      },
      async () => {
        // Admin reads see every metadata write acknowledged before them, from any node.
        await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
        const topics = broker.topics().sort((a, b) => (a.name < b.name ? -1 : 1));
        return { topics: topics.map((t) => describeTopic(broker, t)) };
      },
    );

    app.get<{ Params: { topic: string } }>(
      '/v1/topics/:topic',
      {
        schema: {
          summary: 'Describe a topic',
          params: topicParamsSchema,
          response: { 200: topicDescriptionSchema, ...errorResponses(404, 503) },
        },
      },
      async (request) => {
        await broker.syncMetadata(METADATA_SYNC_TIMEOUT_MS);
        return describeTopic(broker, broker.topic(request.params.topic));
      },
    );

    app.delete<{ Params: { topic: string } }>(
      '/v1/topics/:topic',
      {
        schema: {
          summary: 'Delete a topic and its data on every replica',
          params: topicParamsSchema,
          response: errorResponses(404, 503, 504),
        },
      },
      async (request, reply) => {
        const name = request.params.topic;
        await topicMeta(broker, name);
        const done = await proposeIfLeader(broker, { type: 'deleteTopic', name });
        if (done === null) return relayTo(context, request, reply, metadataLeaderOf(broker));
        return reply.code(204).send();
      },
    );
  };
}

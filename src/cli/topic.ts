// `raftlog topic create|list|describe|delete`: the admin routes, printed as short sentences and
// tables, or as the server's JSON with --json.

import type { PersistenceMode, TopicConfigWire, TopicDescription } from '../wire/types.js';
import { EXIT_OK } from './errors.js';
import { table } from './format.js';
import type { CliIo } from './io.js';
import { type ClientFlags, withClient } from './options.js';

export interface TopicCreateOptions extends ClientFlags {
  name: string;
  partitions?: number;
  replication?: number;
  persistence?: PersistenceMode;
}

export interface TopicNameOptions extends ClientFlags {
  name: string;
}

export function topicCreateCommand(options: TopicCreateOptions, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const config = options.persistence === undefined ? undefined : { persistence: options.persistence };
    const topic = await client.createTopic({
      name: options.name,
      partitions: options.partitions,
      replicationFactor: options.replication,
      config,
    });
    if (options.json) {
      io.stdout.write(`${JSON.stringify(topic)}\n`);
    } else {
      const replication = topic.partitions[0]?.replicas.length ?? options.replication ?? '?';
      io.stdout.write(
        `created topic '${topic.name}': ${plural(topic.partitions.length, 'partition')}, replication ${replication}, ` +
          `persistence ${topic.config.persistence}\n`,
      );
    }
    return EXIT_OK;
  });
}

export function topicListCommand(options: ClientFlags, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const topics = await client.listTopics();
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ topics })}\n`);
    } else if (topics.length === 0) {
      io.stdout.write("no topics yet; create one with 'raftlog topic create NAME'\n");
    } else {
      const rows = [...topics]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((t) => [
          t.name,
          String(t.partitions.length),
          String(t.partitions[0]?.replicas.length ?? '-'),
          t.config.persistence,
          String(t.partitions.reduce((sum, p) => sum + p.highWatermark - p.logStartOffset, 0)),
        ]);
      io.stdout.write(`${table(['TOPIC', 'PARTITIONS', 'REPLICATION', 'PERSISTENCE', 'RECORDS'], rows)}\n`);
    }
    return EXIT_OK;
  });
}

export function topicDescribeCommand(options: TopicNameOptions, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const topic = await client.describeTopic(options.name);
    io.stdout.write(options.json ? `${JSON.stringify(topic)}\n` : `${describeText(topic)}\n`);
    return EXIT_OK;
  });
}

export function topicDeleteCommand(options: TopicNameOptions, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    await client.deleteTopic(options.name);
    io.stdout.write(`deleted topic '${options.name}'\n`);
    return EXIT_OK;
  });
}

function describeText(topic: TopicDescription): string {
  const rows = topic.partitions.map((p) => [
    String(p.partition),
    p.leader === null ? 'none' : String(p.leader),
    String(p.term),
    p.replicas.join(','),
    String(p.logStartOffset),
    String(p.highWatermark),
  ]);
  const header = `topic '${topic.name}': ${plural(topic.partitions.length, 'partition')}, ${configText(topic.config)}`;
  return `${header}\n${table(['PARTITION', 'LEADER', 'TERM', 'REPLICAS', 'LOG-START', 'HIGH-WATERMARK'], rows)}`;
}

function configText(config: TopicConfigWire): string {
  const retentionMs = config.retentionMs < 0 ? 'forever' : `${config.retentionMs} ms`;
  const retentionBytes = config.retentionBytes < 0 ? 'unlimited' : `${config.retentionBytes} bytes`;
  return `persistence ${config.persistence}, retention ${retentionMs} / ${retentionBytes}`;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

// `raftlog group list | describe G | reset G --topic T --to POS`: consumer groups as tables (lag
// per partition), or the server's JSON with --json. A reset is refused while the group has live
// members, as Kafka refuses it: they would commit over it. --force resets anyway.

import { type Command, InvalidArgumentError } from 'commander';
import type { GroupDescription, GroupOffset } from '../client/index.js';
import { CliError, EXIT_OK } from './errors.js';
import { table } from './format.js';
import type { CliIo } from './io.js';
import { type ClientFlags, clientOptions, withClient } from './options.js';
import { partitionList } from './tail/offset.js';

type Runner = (body: (command: Command) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export type ResetTarget = 'earliest' | 'latest' | number;

export interface GroupNameOptions extends ClientFlags {
  group: string;
}

export interface GroupResetOptions extends GroupNameOptions {
  topic: string;
  to: ResetTarget;
  partition?: number[];
  force?: boolean;
}

export function addGroup(program: Command, io: CliIo, run: Runner): void {
  const group = program.command('group').description('list, describe and reset consumer groups');
  clientOptions(group.command('list').description('list consumer groups')).action(
    run((command) => groupListCommand(command.opts(), io)),
  );
  clientOptions(
    group.command('describe').description("show a group's members, committed offsets and lag per partition"),
  )
    .argument('<group>', 'group name')
    .action(run((command) => groupDescribeCommand({ ...command.opts(), group: command.args[0]! }, io)));
  clientOptions(
    group
      .command('reset')
      .description("move a group's committed offsets of a topic (refused while it has live members)")
      .argument('<group>', 'group name')
      .requiredOption('--topic <topic>', 'the topic whose offsets move')
      .requiredOption(
        '--to <position>',
        'earliest, latest or an offset N (clamped to what is retained)',
        resetTarget,
      )
      .option('--partition <list>', 'only these partitions, e.g. 0,1 (default: all)', partitionList)
      .option('--force', 'reset even while the group has live members (they may commit over it)'),
  ).action(run((command) => groupResetCommand({ ...command.opts(), group: command.args[0]! }, io)));
}

export function resetTarget(value: string): ResetTarget {
  if (value === 'earliest' || value === 'latest') return value;
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new InvalidArgumentError('expected earliest, latest or an offset (integer >= 0)');
}

export function groupListCommand(options: ClientFlags, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const groups = await client.listGroups();
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ groups })}\n`);
    } else if (groups.length === 0) {
      io.stdout.write('no consumer groups yet\n');
    } else {
      const rows = [...groups]
        .sort((a, b) => a.group.localeCompare(b.group))
        .map((g) => [g.group, String(g.members), String(g.generation)]);
      io.stdout.write(`${table(['GROUP', 'MEMBERS', 'GENERATION'], rows)}\n`);
    }
    return EXIT_OK;
  });
}

export function groupDescribeCommand(options: GroupNameOptions, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const description = await client.describeGroup(options.group);
    io.stdout.write(options.json ? `${JSON.stringify(description)}\n` : describeText(description));
    return EXIT_OK;
  });
}

function describeText(description: GroupDescription): string {
  const { group, generation, members, offsets } = description;
  const lines = [`group '${group}', generation ${generation}, ${members.length} live member(s)`, ''];
  if (members.length > 0) {
    const rows = members.map((m) => [
      m.memberId,
      m.topics.join(','),
      m.assignments.map((a) => `${a.topic}/${a.partition}`).join(',') || '-',
      `${m.lastHeartbeatMs} ms ago`,
    ]);
    lines.push(table(['MEMBER', 'TOPICS', 'ASSIGNED', 'LAST HEARTBEAT'], rows), '');
  }
  if (offsets.length === 0) {
    lines.push('no committed offsets');
  } else {
    const rows = [...offsets]
      .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
      .map((o) => [o.topic, String(o.partition), String(o.offset), String(o.highWatermark), String(o.lag)]);
    lines.push(table(['TOPIC', 'PARTITION', 'OFFSET', 'HIGH-WATERMARK', 'LAG'], rows));
  }
  return `${lines.join('\n')}\n`;
}

export function groupResetCommand(options: GroupResetOptions, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    const before = await client.describeGroup(options.group);
    if (before.members.length > 0 && !options.force) {
      throw new CliError(
        `group '${options.group}' has ${before.members.length} live member(s): stop them first ` +
          `(they would commit over the reset), or pass --force`,
      );
    }
    const topic = await client.describeTopic(options.topic);
    const known = new Set(topic.partitions.map((p) => p.partition));
    const missing = options.partition?.filter((p) => !known.has(p)) ?? [];
    if (missing.length > 0) {
      throw new CliError(`topic '${options.topic}' has no partition ${missing.join(', ')}`);
    }
    const offsets: GroupOffset[] = topic.partitions
      .filter((p) => options.partition === undefined || options.partition.includes(p.partition))
      .map((p) => {
        const to = options.to;
        // Like Kafka's --to-offset, an offset outside what is retained is clamped into it.
        const offset =
          to === 'earliest'
            ? p.logStartOffset
            : to === 'latest'
              ? p.highWatermark
              : Math.min(Math.max(to, p.logStartOffset), p.highWatermark);
        return { topic: options.topic, partition: p.partition, offset };
      });
    await client.commitOffsets(options.group, offsets);
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ group: options.group, offsets })}\n`);
      return EXIT_OK;
    }
    const previous = new Map(
      before.offsets.filter((o) => o.topic === options.topic).map((o) => [o.partition, o.offset]),
    );
    const rows = offsets.map((o) => [
      o.topic,
      String(o.partition),
      String(previous.get(o.partition) ?? '-'),
      String(o.offset),
    ]);
    io.stdout.write(`reset group '${options.group}' on '${options.topic}'\n\n`);
    io.stdout.write(`${table(['TOPIC', 'PARTITION', 'FROM', 'TO'], rows)}\n`);
    return EXIT_OK;
  });
}

// `raftlog tail TOPIC`: prints records of every partition (or those of --partition), from --offset.
// Without --follow it reads up to each partition's high watermark and exits; with --follow it keeps
// printing until Ctrl-C (tail/follow.ts). With --group it is a member of that consumer group and
// commits what it printed. --count ends it early. Ctrl-C exits 0.

import { type Command, Option } from 'commander';
import type { RaftlogClient } from '../client/index.js';
import { EXIT_OK, UsageError } from './errors.js';
import { type CliIo, interruptSignal } from './io.js';
import { type ClientFlags, clientOptions, integerIn, withClient } from './options.js';
import { FOLLOW_WAIT_MS, follow } from './tail/follow.js';
import { type OffsetSpec, offsetSpec, partitionList, resolveStarts, uniformStart } from './tail/offset.js';
import type { TailPlan } from './tail/plan.js';
import { parseFormat, type Render, renderJson, renderLine } from './tail/print.js';
import { fromConsumed, Sink } from './tail/sink.js';

export interface TailOptions extends ClientFlags {
  topic: string;
  partition?: number[];
  /** Default: earliest, or latest with --follow. */
  offset?: OffsetSpec;
  /** The old name of --offset, kept as a hidden alias. */
  from?: OffsetSpec;
  count?: number;
  group?: string;
  /** A parsed --format template. */
  format?: Render;
  follow?: boolean;
}

type Runner = (body: (command: Command) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function addTail(program: Command, io: CliIo, run: Runner): void {
  clientOptions(
    program
      .command('tail')
      .description('print records of a topic (all partitions by default)')
      .argument('<topic>', 'topic name')
      .option('--partition <list>', 'only these partitions, e.g. 0 or 0,1', partitionList)
      .option(
        '--offset <position>',
        'where each partition starts: earliest, latest, N, -N (N before the end) or @TIMESTAMP (ms or ISO 8601) ' +
          '(default: earliest, or latest with --follow)',
        offsetSpec,
      )
      .addOption(new Option('--from <position>', 'the old name of --offset').argParser(offsetSpec).hideHelp())
      .option('--count <n>', 'stop after N records in all', integerIn(1, Number.MAX_SAFE_INTEGER))
      .option('--group <group>', 'read as a member of this consumer group, committing what was printed')
      .option(
        '--format <template>',
        "print each record as TEMPLATE: %t topic, %p partition, %o offset, %k key, %v value, %h headers, %T timestamp, \\n, \\t (e.g. '%k=%v\\n')",
        parseFormat,
      )
      .option('--follow', 'keep printing records as they commit, until Ctrl-C'),
  ).action(run((command) => tailCommand({ ...command.opts(), topic: command.args[0]! }, io)));
}

export async function tailCommand(options: TailOptions, io: CliIo): Promise<number> {
  const spec = checkFlags(options);
  const render = options.format ?? (options.json ? renderJson : renderLine);
  const sink = new Sink(io, render, options.count);
  const { signal, stopListening } = interruptSignal(io);
  const plan: TailPlan = { topic: options.topic, partitions: options.partition, spec, signal };
  try {
    return await withClient(options, io, async (client) => {
      if (options.group !== undefined) await tailGroup(client, plan, options.group, options, sink);
      else if (options.follow) await follow(client, plan, sink, io);
      else await readToEnd(client, plan, sink);
      return EXIT_OK;
    });
  } catch (error) {
    if (signal.aborted) return EXIT_OK; // Ctrl-C is how a tail ends.
    throw error;
  } finally {
    stopListening();
  }
}

/** The flag combinations that cannot work, refused before anything is sent (exit 2). */
function checkFlags(options: TailOptions): OffsetSpec {
  if (options.offset !== undefined && options.from !== undefined) {
    throw new UsageError('--from is the old name of --offset: give one of them');
  }
  if (options.format !== undefined && options.json) {
    throw new UsageError('--format and --json exclude each other');
  }
  const given = options.offset ?? options.from;
  const spec: OffsetSpec = given ?? { kind: 'position', position: options.follow ? 'latest' : 'earliest' };
  if (options.group !== undefined) {
    if (options.partition !== undefined) {
      throw new UsageError('--partition and --group exclude each other: the group assigns partitions');
    }
    const position = uniformStart(spec);
    if (given !== undefined && position !== 'earliest' && position !== 'latest') {
      throw new UsageError(
        "with --group, --offset is earliest or latest (where a partition without a committed offset starts); move a group with 'raftlog group reset'",
      );
    }
  }
  return spec;
}

async function readToEnd(client: RaftlogClient, plan: TailPlan, sink: Sink): Promise<void> {
  const starts = await resolveStarts(client, plan);
  const consumer = client.consumer({
    topic: plan.topic,
    partitions: plan.partitions,
    from: uniformStart(plan.spec) ?? 'earliest',
    binary: true,
  });
  try {
    for (const [partition, offset] of starts) consumer.seek(partition, offset);
    for await (const record of consumer.records({ follow: false, signal: plan.signal })) {
      if (!sink.print(fromConsumed(record))) break;
    }
  } finally {
    await consumer.close();
  }
}

/**
 * A member of the group: reads the partitions it is assigned, from the group's committed offsets
 * (--offset where none is), and commits only records it printed: the consumer counts a record as
 * finished when the loop asks for the next one, on Ctrl-C, or by markDone at --count.
 */
async function tailGroup(
  client: RaftlogClient,
  plan: TailPlan,
  group: string,
  options: TailOptions,
  sink: Sink,
): Promise<void> {
  const consumer = client.consumer({
    topic: plan.topic,
    group,
    from: uniformStart(plan.spec) ?? 'earliest',
    binary: true,
    waitMs: options.follow ? FOLLOW_WAIT_MS : undefined,
  });
  try {
    for await (const record of consumer.records({ follow: options.follow === true, signal: plan.signal })) {
      if (!sink.print(fromConsumed(record))) {
        consumer.markDone(record);
        break;
      }
    }
  } finally {
    // Commits what was printed and leaves the group, so that its partitions move on at once.
    await consumer.close();
  }
}

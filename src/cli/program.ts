// The commander program: every command and flag of the contract (docs/cli.md), wired to the
// command functions. runCli(argv, io) is the whole CLI as a function returning the exit code, so
// tests and end-to-end suites can run it in-process.

import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DISK_FREE_BYTES_MIN_DEFAULT } from '../broker/disk-guard.js';
import { addBench } from './bench.js';
import { clusterCommand } from './cluster.js';
import { devCommand } from './dev.js';
import { EXIT_USAGE, reportError } from './errors.js';
import { addGroup } from './group.js';
import type { CliIo } from './io.js';
import {
  clientOptions,
  integerIn,
  listenAddress,
  logLevel,
  PERSISTENCE_MODES,
  peerList,
  persistenceMode,
} from './options.js';
import { produceCommand } from './produce/command.js';
import { headerFlag } from './produce/records.js';
import { startCommand } from './start.js';
import { addTail } from './tail.js';
import { topicCreateCommand, topicDeleteCommand, topicDescribeCommand, topicListCommand } from './topic.js';
import { addVerify } from './verify/command.js';

/** Runs the CLI on arguments (without the node and script paths); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const state = { exitCode: 0 };
  const program = buildProgram(io, state);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.exitCode;
  } catch (error) {
    // Commander has already printed its message (help, version, or a usage error).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    return reportError(io, error, argv.includes('--debug'));
  }
}

type ActionBody = (command: Command) => Promise<number>;

function buildProgram(io: CliIo, state: { exitCode: number }): Command {
  const program = new Command('raftlog');
  program
    .description('A Kafka-like replicated log broker: every partition is a Raft group.')
    .version(packageVersion(), '-V, --version')
    .option('--debug', 'print stack traces and error details')
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // One line, prefixed like our own errors.
      outputError: (text, write) =>
        write(
          `raftlog: ${text
            .replace(/^error: /, '')
            .replace(/\s*\n\s*/g, ' ')
            .trim()}\n`,
        ),
    });

  /** Wraps a command body: its exit code, or its error reported as one line. */
  const run =
    (body: ActionBody) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const debug = command.optsWithGlobals<{ debug?: boolean }>().debug === true;
      try {
        state.exitCode = await body(command);
      } catch (error) {
        state.exitCode = reportError(io, error, debug);
      }
    };

  addStart(program, io, run);
  addDev(program, io, run);
  addTopic(program, io, run);
  addProduce(program, io, run);
  addTail(program, io, run);
  addGroup(program, io, run);
  addCluster(program, io, run);
  addBench(program, io, run);
  addVerify(program, io, run);
  return program;
}

type Runner = (body: ActionBody) => (...args: unknown[]) => Promise<void>;

function addStart(program: Command, io: CliIo, run: Runner): void {
  program
    .command('start')
    .description(
      'run a node (with no flags: a single-node cluster on 127.0.0.1:9090, data in ./raftlog-data)',
    )
    .option('--id <id>', 'this node id (an integer >= 1)', integerIn(1, 2 ** 31 - 1), 1)
    .option('--data <dir>', 'data directory of this node', './raftlog-data')
    .addOption(
      new Option('--listen <host:port>', 'address to serve clients and peers on')
        .argParser(listenAddress)
        .default(listenAddress('127.0.0.1:9090'), '127.0.0.1:9090'),
    )
    .option('--peers <list>', 'every voting node as ID=URL,... (default: ID=http://LISTEN)', peerList)
    .addOption(
      new Option('--persistence <mode>', 'persistence of topics created without one')
        .choices(PERSISTENCE_MODES)
        .default('async'),
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', logLevel, 'info')
    .option(
      '--disk-free-min-bytes <bytes>',
      'free space the data directory keeps; under it produce to disk topics is refused (507 DISK_FULL)',
      integerIn(0, Number.MAX_SAFE_INTEGER),
      DISK_FREE_BYTES_MIN_DEFAULT,
    )
    .option(
      '--memory-topics-max-bytes <bytes>',
      'memory-topic data this node holds at most; past it produce to memory topics is refused ' +
        '(507 MEMORY_FULL) (default: a quarter of the memory available)',
      integerIn(1, Number.MAX_SAFE_INTEGER),
    )
    .action(run((command) => startCommand(command.opts(), io)));
}

function addDev(program: Command, io: CliIo, run: Runner): void {
  program
    .command('dev')
    .description('run a local cluster of N nodes as child processes; Ctrl-C stops them all')
    .option('--nodes <n>', 'number of nodes', integerIn(1, 9), 3)
    .option(
      '--base-port <port>',
      'port of node 1; node N listens on base-port + N - 1',
      integerIn(1, 65535),
      9090,
    )
    .option('--data <dir>', 'data directory (node N keeps its data in <dir>/node-N)', './raftlog-dev')
    .option('--chaos', 'kill, pause and partition the nodes on a seeded schedule (docs/cli.md)')
    .option('--seed <n>', 'seed of the chaos schedule (default: random, printed)', integerIn(0, 2 ** 32 - 1))
    .action(run((command) => devCommand(command.opts(), io)));
}

function addTopic(program: Command, io: CliIo, run: Runner): void {
  const topic = program.command('topic').description('create, list, describe and delete topics');
  clientOptions(
    topic
      .command('create')
      .description('create a topic')
      .argument('<name>', 'topic name: 1 to 249 characters of [a-zA-Z0-9._-]')
      .option('--partitions <n>', 'number of partitions (default 1)', integerIn(1, 1_000_000))
      .option('--replication <n>', 'replicas per partition (default: min(3, nodes))', integerIn(1, 1000))
      .addOption(
        new Option('--persistence <mode>', "sync, async or memory (default: the node's)").argParser(
          persistenceMode,
        ),
      ),
  ).action(run((command) => topicCreateCommand({ ...command.opts(), name: command.args[0]! }, io)));
  clientOptions(topic.command('list').description('list topics')).action(
    run((command) => topicListCommand(command.opts(), io)),
  );
  clientOptions(
    topic
      .command('describe')
      .description('show a topic: config, and per partition leader, replicas, offsets'),
  )
    .argument('<name>', 'topic name')
    .action(run((command) => topicDescribeCommand({ ...command.opts(), name: command.args[0]! }, io)));
  clientOptions(topic.command('delete').description('delete a topic and its data'), false)
    .argument('<name>', 'topic name')
    .action(run((command) => topicDeleteCommand({ ...command.opts(), name: command.args[0]! }, io)));
}

function addProduce(program: Command, io: CliIo, run: Runner): void {
  clientOptions(
    program
      .command('produce')
      .description('produce VALUE as one record, or without VALUE one record per line of stdin')
      .argument('<topic>', 'topic name')
      .argument('[value]', 'the record value (UTF-8)')
      .option('--key <key>', 'record key (partition chosen by murmur2 of the key, as in Kafka)')
      .option('--partition <p>', 'write to this partition', integerIn(0, 2 ** 31 - 1))
      .option('--key-separator <sep>', 'each line is KEY<sep>VALUE (a line without <sep> is an error)')
      .option('--header <K=V>', 'a header on every record (repeatable)', headerFlag)
      .option('--json-lines', 'each line is a JSON object: {"key", "value", "headers", "partition"}'),
  ).action(
    run((command) =>
      produceCommand({ ...command.opts(), topic: command.args[0]!, value: command.args[1] }, io),
    ),
  );
}

function addCluster(program: Command, io: CliIo, run: Runner): void {
  clientOptions(
    program.command('cluster').description('show nodes, the metadata leader, partition leaders and lag'),
  ).action(run((command) => clusterCommand(command.opts(), io)));
}

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// The `raftlog verify` command line: flags and their checks, wired to verifyCommand (run.ts).

import { type Command, Option } from 'commander';
import type { CliIo } from '../io.js';
import { integerIn, PERSISTENCE_MODES } from '../options.js';
import { verifyCommand } from './run.js';

type Runner = (body: (command: Command) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function addVerify(program: Command, io: CliIo, run: Runner): void {
  program
    .command('verify')
    .description(
      'write numbered records and read them back from every replica; report loss, duplicates, reordering, gaps and stale reads',
    )
    .argument('<topic>', 'topic to write to (created if missing)')
    .option('--seconds <n>', 'seconds of writing', integerIn(1, 86_400), 60)
    .option(
      '--server <urls>',
      'nodes of the cluster, comma-separated (default: $RAFTLOG_URL, then http://127.0.0.1:9090)',
    )
    .addOption(
      new Option('--persistence <mode>', 'persistence of the topic if verify creates it').choices(
        PERSISTENCE_MODES,
      ),
    )
    .option('--partitions <n>', 'partitions of the topic if verify creates it', integerIn(1, 1_000), 3)
    .action(run((command) => verifyCommand(command.args[0]!, command.opts(), io)));
}

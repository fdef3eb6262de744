// `raftlog produce TOPIC [VALUE]`: one record from the argument, or one record per stdin line
// (plain, KEY<SEP>VALUE, or JSON objects), through the SDK's idempotent Producer. A retry reuses
// the batch's producer sequence, so a 504, a leader change or a node's death neither loses nor
// duplicates a line; retries are bounded in time (PRODUCE_RETRY).

import { RaftlogClient } from '../../client/index.js';
import { MAX_RECORD_BYTES } from '../../wire/types.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { type CliIo, interruptSignal } from '../io.js';
import { type ClientFlags, serverUrls } from '../options.js';
import { produceLines } from './lines.js';
import { LineError, type LineFormat, recordOfLine } from './records.js';
import { Report } from './report.js';

export interface ProduceOptions extends ClientFlags {
  topic: string;
  /** Absent: read stdin. */
  value?: string;
  key?: string;
  partition?: number;
  keySeparator?: string;
  /** --header K=V, repeated. */
  header?: Record<string, string>;
  jsonLines?: boolean;
}

/**
 * Retries of one request: long enough to ride out a leader election (about a second) and a
 * node's death (its connections refused, then skipped while the route is asked again), bounded
 * so that a cluster that stays down fails the command in half a minute.
 */
export const PRODUCE_RETRY = { attemptsMax: 1_000, backoffMs: 50, backoffMsMax: 1_000, totalMsMax: 30_000 };
/** Server-side commit wait per request: a stuck commit answers 504 in time for a retry. */
const COMMIT_TIMEOUT_MS = 10_000;
/** Lookups (the topic, the nodes): a few quick retries, so that a typo'd --server fails at once. */
const LOOKUP_RETRY = { attemptsMax: 3, backoffMs: 100 };
/** A JSON line may escape a 1 MiB value up to 6 times (\u00XX); the server checks the record. */
const JSON_LINE_BYTES_MAX = 8 * MAX_RECORD_BYTES;

export async function produceCommand(options: ProduceOptions, io: CliIo): Promise<number> {
  const format = lineFormat(options);
  const client = new RaftlogClient({
    urls: serverUrls(options.server, io),
    dispatcher: io.dispatcher,
    retry: LOOKUP_RETRY,
  });
  try {
    // Fails fast on an unknown topic or an unreachable cluster, before stdin is read.
    await client.describeTopic(options.topic);
    // lingerMs 0 for one record: nothing else is coming, so don't wait for company.
    const producer = client.producer({
      idempotent: true,
      lingerMs: options.value === undefined ? 5 : 0,
      retry: PRODUCE_RETRY,
      commitTimeoutMs: COMMIT_TIMEOUT_MS,
    });
    const report = new Report(io, options.topic, options.json === true);
    if (options.value !== undefined) {
      const record = recordOfValue(options.value, format);
      const [metadata] = await producer.send(options.topic, [record]);
      report.add(metadata!, 0);
      report.finish();
      return EXIT_OK;
    }
    if (io.stdin.isTTY)
      io.stderr.write('raftlog: reading records from stdin, one per line; end with Ctrl-D\n');
    const { signal, stopListening } = interruptSignal(io);
    try {
      return await produceLines({
        io,
        signal,
        report,
        format,
        lineBytesMax: format.jsonLines ? JSON_LINE_BYTES_MAX : MAX_RECORD_BYTES,
        send: async (record) => (await producer.send(options.topic, [record]))[0]!,
      });
    } finally {
      stopListening();
      await producer.close();
    }
  } finally {
    await client.close();
  }
}

function lineFormat(options: ProduceOptions): LineFormat {
  const separator = options.keySeparator;
  if (separator === '') throw new UsageError('--key-separator: give a non-empty separator');
  const given = [
    options.key !== undefined && '--key',
    separator !== undefined && '--key-separator',
    options.jsonLines === true && '--json-lines',
  ].filter((flag) => flag !== false);
  if (given.length > 1) {
    throw new UsageError(`${given.join(' and ')} both say where keys come from: give one`);
  }
  return {
    keySeparator: separator,
    jsonLines: options.jsonLines === true,
    key: options.key,
    partition: options.partition,
    headers: options.header,
  };
}

/** VALUE is read as one line would be (KEY<SEP>VALUE, or a JSON object with --json-lines). */
function recordOfValue(value: string, format: LineFormat) {
  try {
    const record = recordOfLine(value, format);
    if (record === undefined) throw new LineError('expected a JSON object, got a blank VALUE');
    return record;
  } catch (error) {
    if (error instanceof LineError) throw new UsageError(`VALUE: ${error.message}`);
    throw error;
  }
}

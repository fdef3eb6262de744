// `raftlog produce TOPIC [VALUE]`: one record from the argument, or one record per stdin line.
// Lines go through the SDK Producer (batched by linger and size); at most a bounded window of
// records is unacknowledged at once, so memory stays bounded however long stdin is.

import { type RecordMetadata, splitLines } from '../client/index.js';
import { MAX_RECORD_BYTES, type ProduceRecord } from '../wire/types.js';
import { EXIT_OK } from './errors.js';
import { type CliIo, interruptSignal } from './io.js';
import { type ClientFlags, withClient } from './options.js';

export interface ProduceOptions extends ClientFlags {
  topic: string;
  /** Absent: read stdin. */
  value?: string;
  key?: string;
  partition?: number;
}

/** Records awaiting acknowledgement, at most. */
const WINDOW_RECORDS_MAX = 10_000;
const WINDOW_BYTES_MAX = 8 * 1024 * 1024;
/** Up to this many records, each offset is printed; beyond, a summary per partition. */
export const PRINT_EACH_RECORDS_MAX = 10;

type Settled = { ok: true; metadata: RecordMetadata } | { ok: false; error: unknown };

export async function produceCommand(options: ProduceOptions, io: CliIo): Promise<number> {
  return withClient(options, io, async (client) => {
    // lingerMs 0 for one record: nothing else is coming, so don't wait for company.
    // A few quick retries ride out a leader election (503) without making a typo'd --server slow.
    const retry = { attemptsMax: 3, backoffMs: 100 };
    const producer = client.producer({ lingerMs: options.value === undefined ? 5 : 0, retry });
    const report = new Report(io, options);
    const record = (value: string): ProduceRecord => ({
      value,
      key: options.key,
      partition: options.partition,
    });
    if (options.value !== undefined) {
      const [metadata] = await producer.send(options.topic, [record(options.value)]);
      report.add(metadata!);
      report.finish();
      return EXIT_OK;
    }
    if (io.stdin.isTTY)
      io.stderr.write('raftlog: reading records from stdin, one per line; end with Ctrl-D\n');
    const { signal, stopListening } = interruptSignal(io);
    try {
      return await produceLines(io, signal, report, async (line) => {
        const [metadata] = await producer.send(options.topic, [record(line)]);
        return metadata!;
      });
    } finally {
      stopListening();
      await producer.close();
    }
  });
}

async function produceLines(
  io: CliIo,
  signal: AbortSignal,
  report: Report,
  send: (line: string) => Promise<RecordMetadata>,
): Promise<number> {
  const window: Array<{ settled: Promise<Settled>; bytes: number }> = [];
  let windowBytes = 0;
  let failure: unknown;
  const settleOldest = async () => {
    const { settled, bytes } = window.shift()!;
    windowBytes -= bytes;
    const outcome = await settled;
    if (outcome.ok) report.add(outcome.metadata);
    else failure ??= outcome.error;
  };
  try {
    for await (const line of untilAborted(splitLines(io.stdin, MAX_RECORD_BYTES), signal)) {
      const settled = send(line).then(
        (metadata): Settled => ({ ok: true, metadata }),
        (error: unknown): Settled => ({ ok: false, error }),
      );
      const bytes = Buffer.byteLength(line);
      window.push({ settled, bytes });
      windowBytes += bytes;
      while (window.length >= WINDOW_RECORDS_MAX || windowBytes >= WINDOW_BYTES_MAX) await settleOldest();
      if (failure !== undefined) break;
    }
  } catch (error) {
    failure ??= error; // stdin failed, or a line was too long
  }
  while (window.length > 0) await settleOldest();
  report.finish();
  if (failure === undefined) return EXIT_OK;
  // The records above were acknowledged; the error itself is reported by the caller, once.
  if (report.count > 0) io.stderr.write(`raftlog: stopped after ${report.count} acknowledged records\n`);
  throw failure;
}

/** Stops pulling from source once the signal aborts (Ctrl-C while reading stdin). */
async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const aborted = new Promise<IteratorResult<T>>((resolve) => {
    if (signal.aborted) resolve({ done: true, value: undefined });
    signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Not awaited: after an abort the source may still be blocked in a read.
    void iterator.return?.()?.catch(() => undefined);
  }
}

/** Prints each offset for a few records, else a summary per partition; NDJSON with --json. */
class Report {
  count = 0;
  private readonly first: RecordMetadata[] = [];
  private readonly partitions = new Map<number, { first: number; last: number; count: number }>();

  constructor(
    private readonly io: CliIo,
    private readonly options: ProduceOptions,
  ) {}

  add(metadata: RecordMetadata): void {
    this.count++;
    if (this.options.json) {
      const { partition, offset, duplicate } = metadata;
      this.io.stdout.write(`${JSON.stringify({ topic: metadata.topic, partition, offset, duplicate })}\n`);
      return;
    }
    if (this.first.length < PRINT_EACH_RECORDS_MAX) this.first.push(metadata);
    const range = this.partitions.get(metadata.partition);
    if (range) {
      range.first = Math.min(range.first, metadata.offset);
      range.last = Math.max(range.last, metadata.offset);
      range.count++;
    } else {
      this.partitions.set(metadata.partition, { first: metadata.offset, last: metadata.offset, count: 1 });
    }
  }

  finish(): void {
    if (this.options.json || this.count === 0) return;
    if (this.count <= PRINT_EACH_RECORDS_MAX) {
      for (const { partition, offset } of this.first) this.io.stdout.write(`${partition}:${offset}\n`);
      return;
    }
    this.io.stdout.write(`produced ${this.count} records to '${this.options.topic}'\n`);
    for (const [partition, range] of [...this.partitions].sort((a, b) => a[0] - b[0])) {
      this.io.stdout.write(
        `partition ${partition}: ${range.count} records, offsets ${range.first}..${range.last}\n`,
      );
    }
  }
}

// The stdin loop of `raftlog produce`: one record per line, sent through the SDK Producer in
// line order (so in order per key: the producer keeps one request in flight per partition), with
// at most a bounded window of records unacknowledged. It stops at the first bad line or failed
// record, waits for what is in flight, and says which lines were acknowledged.

import {
  LineTooLongError,
  type ProducerRecord,
  type RecordMetadata,
  splitLines,
} from '../../client/index.js';
import { CliError, describeError, EXIT_OK } from '../errors.js';
import type { CliIo } from '../io.js';
import { LineError, type LineFormat, recordOfLine } from './records.js';
import type { Report } from './report.js';

/** Records awaiting acknowledgement, at most. */
const WINDOW_RECORDS_MAX = 10_000;
const WINDOW_BYTES_MAX = 8 * 1024 * 1024;

export type SendRecord = (record: ProducerRecord<string>) => Promise<RecordMetadata>;

type Settled = { ok: true; metadata: RecordMetadata } | { ok: false; error: unknown };

interface InFlight {
  settled: Promise<Settled>;
  line: number;
  bytes: number;
}

export interface LinesInput {
  io: CliIo;
  signal: AbortSignal;
  report: Report;
  format: LineFormat;
  lineBytesMax: number;
  send: SendRecord;
}

/** Produces every line of stdin; resolves EXIT_OK, or throws the first bad line or failure. */
export async function produceLines(input: LinesInput): Promise<number> {
  const window = new Window(input.report, input.send);
  let lineNumber = 0;
  let badLine: CliError | undefined;
  let stdinFailure: unknown;
  try {
    for await (const line of untilAborted(splitLines(input.io.stdin, input.lineBytesMax), input.signal)) {
      lineNumber++;
      let record: ProducerRecord<string> | undefined;
      try {
        record = recordOfLine(line, input.format);
      } catch (error) {
        if (!(error instanceof LineError)) throw error;
        badLine = new CliError(`line ${lineNumber}: ${error.message}`);
        break;
      }
      if (record !== undefined) await window.push(record, lineNumber);
      if (window.failing) break;
    }
  } catch (error) {
    if (error instanceof LineTooLongError) {
      lineNumber = error.lineNumber;
      badLine = new CliError(error.message);
    } else {
      stdinFailure = error;
    }
  }
  await window.drain();
  input.report.finish();
  const failure = window.firstFailure;
  if (failure) {
    const notAcknowledged = window.sent - input.report.count;
    const fromFailure = window.sent - failure.acknowledgedBefore;
    input.report.summary(
      `; ${acknowledgedUpTo(failure.line - 1)}${notAcknowledged} of the ${fromFailure} records ` +
        `from line ${failure.line} on were not acknowledged`,
    );
    throw new CliError(`line ${failure.line}: ${describeError(failure.error)}`, { cause: failure.error });
  }
  if (badLine) {
    input.report.summary(`; ${acknowledgedUpTo(lineNumber - 1)}nothing from line ${lineNumber} on was sent`);
    throw badLine;
  }
  if (stdinFailure !== undefined) {
    input.report.summary(`; every line read (1 to ${lineNumber}) was acknowledged, then stdin failed`);
    throw stdinFailure;
  }
  const interrupted = input.signal.aborted ? `; interrupted after line ${lineNumber}` : '';
  input.report.summary(interrupted);
  return EXIT_OK;
}

function acknowledgedUpTo(lastLine: number): string {
  if (lastLine < 1) return '';
  return lastLine === 1 ? 'line 1 was acknowledged; ' : `lines 1 to ${lastLine} were acknowledged; `;
}

/** Records sent and not yet settled, oldest first; settled in line order. */
class Window {
  sent = 0;
  /** Some record failed (maybe not settled in order yet): stop reading. */
  failing = false;
  /** The failure of the lowest line, once the window is settled up to it. */
  firstFailure: { line: number; error: unknown; acknowledgedBefore: number } | undefined;
  private readonly inFlight: InFlight[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly report: Report,
    private readonly send: SendRecord,
  ) {}

  async push(record: ProducerRecord<string>, line: number): Promise<void> {
    const settled = this.send(record).then(
      (metadata): Settled => ({ ok: true, metadata }),
      (error: unknown): Settled => {
        this.failing = true;
        return { ok: false, error };
      },
    );
    const key = record.key;
    const bytes = Buffer.byteLength(record.value) + (typeof key === 'string' ? Buffer.byteLength(key) : 0);
    this.inFlight.push({ settled, line, bytes });
    this.sent++;
    this.bytes += bytes;
    while (this.inFlight.length - this.head >= WINDOW_RECORDS_MAX || this.bytes >= WINDOW_BYTES_MAX) {
      await this.settleOldest();
    }
  }

  async drain(): Promise<void> {
    while (this.head < this.inFlight.length) await this.settleOldest();
  }

  private async settleOldest(): Promise<void> {
    const oldest = this.inFlight[this.head]!;
    this.inFlight[this.head++] = undefined as unknown as InFlight;
    if (this.head >= 1024 && this.head * 2 >= this.inFlight.length) {
      this.inFlight.splice(0, this.head);
      this.head = 0;
    }
    this.bytes -= oldest.bytes;
    const outcome = await oldest.settled;
    if (outcome.ok) this.report.add(outcome.metadata, oldest.bytes);
    // Settled in line order: every record before this one is acknowledged.
    else
      this.firstFailure ??= {
        line: oldest.line,
        error: outcome.error,
        acknowledgedBefore: this.report.count,
      };
  }
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

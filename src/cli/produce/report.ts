// What `raftlog produce` prints: on stdout each offset for a few records, else a summary per
// partition (NDJSON per record with --json); on stderr, at the end, how much was produced, how
// fast, and after a failure which lines were acknowledged.

import type { RecordMetadata } from '../../client/index.js';
import type { CliIo } from '../io.js';

/** Up to this many records, each offset is printed; beyond, a summary per partition. */
export const PRINT_EACH_RECORDS_MAX = 10;

interface PartitionRange {
  first: number;
  last: number;
  count: number;
}

export class Report {
  count = 0;
  /** UTF-8 bytes of the acknowledged records' keys and values. */
  bytes = 0;
  private readonly startedMs = performance.now();
  private readonly first: RecordMetadata[] = [];
  private readonly partitions = new Map<number, PartitionRange>();

  constructor(
    private readonly io: CliIo,
    private readonly topic: string,
    private readonly json: boolean,
  ) {}

  add(metadata: RecordMetadata, bytes: number): void {
    this.count++;
    this.bytes += bytes;
    if (this.json) {
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

  /** The offsets, or the summary per partition, on stdout. */
  finish(): void {
    if (this.json || this.count === 0) return;
    if (this.count <= PRINT_EACH_RECORDS_MAX) {
      for (const { partition, offset } of this.first) this.io.stdout.write(`${partition}:${offset}\n`);
      return;
    }
    this.io.stdout.write(`produced ${this.count} records to '${this.topic}'\n`);
    for (const [partition, range] of [...this.partitions].sort((a, b) => a[0] - b[0])) {
      this.io.stdout.write(
        `partition ${partition}: ${range.count} records, offsets ${range.first}..${range.last}\n`,
      );
    }
  }

  /** One line on stderr: records, bytes, time; `tail` says what was sent when produce stopped early. */
  summary(tail = ''): void {
    const seconds = (performance.now() - this.startedMs) / 1000;
    const rate = seconds > 0 ? `, ${Math.round(this.count / seconds)} records/s` : '';
    const records = this.count === 1 ? 'record' : 'records';
    this.io.stderr.write(
      `raftlog: produced ${this.count} ${records} (${formatBytes(this.bytes)}) in ${seconds.toFixed(2)} s${rate}${tail}\n`,
    );
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

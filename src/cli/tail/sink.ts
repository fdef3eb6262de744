// Where tail's records go: rendered to stdout, counted against --count. Also the two shapes records
// arrive in (a consumer's bytes, a stream's base64), brought to one.

import type { ConsumedRecord, StreamedRecord } from '../../client/index.js';
import type { CliIo } from '../io.js';
import type { Render, TailRecord } from './print.js';

export class Sink {
  printed = 0;

  constructor(
    private readonly io: CliIo,
    private readonly render: Render,
    /** --count: stop after this many records in all; undefined: no limit. */
    private readonly countMax: number | undefined,
  ) {}

  /** Prints the record; false once --count records have been printed (stop reading). */
  print(record: TailRecord): boolean {
    this.io.stdout.write(this.render(record));
    this.printed++;
    return !this.full;
  }

  get full(): boolean {
    return this.countMax !== undefined && this.printed >= this.countMax;
  }
}

/** A record of a binary consumer (key and value already bytes). */
export function fromConsumed(record: ConsumedRecord<Uint8Array>): TailRecord {
  return record;
}

/** A record of a stream opened with `encoding: 'base64'`. */
export function fromStreamed(topic: string, record: StreamedRecord): TailRecord {
  return {
    topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key === undefined || record.key === null ? null : Buffer.from(record.key, 'base64'),
    value: Buffer.from(record.value, 'base64'),
    headers: record.headers ?? null,
  };
}

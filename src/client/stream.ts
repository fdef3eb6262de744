// Record streams of the stream routes: an NDJSON response body read as an async iterator of
// records. Backpressure is the iterator's: the body is only read as fast as records are pulled,
// so a slow reader makes TCP push back on the server instead of growing a buffer here.

import { LineTooLongError, splitLines } from '../wire/lines.js';
import type { FetchedRecord } from '../wire/types.js';
import { RaftlogError, RaftlogNetworkError } from './errors.js';
import type { StreamResponse } from './http.js';

/** A record of a stream: always tagged with its partition. */
export interface StreamedRecord extends FetchedRecord {
  partition: number;
}

/** An open stream; iterate it once. Ends when the server ends it or the caller's signal aborts. */
export interface RecordStream extends AsyncIterable<StreamedRecord> {
  /** Closes the connection; a pending iteration ends. */
  close(): void;
}

export interface RecordStreamOptions {
  /** Stamped on records that lack `partition` (the per-partition route may omit it). */
  partition?: number;
  lineBytesMax: number;
  signal?: AbortSignal;
  /** Base URL of the node, for errors. */
  baseUrl: string;
}

export function recordStream(response: StreamResponse, options: RecordStreamOptions): RecordStream {
  const state = { iterated: false, closed: false };
  return {
    close: () => {
      state.closed = true;
      response.body.destroy();
    },
    [Symbol.asyncIterator]: () => {
      if (state.iterated) throw new Error('a RecordStream can be iterated only once');
      state.iterated = true;
      return readRecords(response, options, state);
    },
  };
}

async function* readRecords(
  response: StreamResponse,
  options: RecordStreamOptions,
  state: { closed: boolean },
): AsyncGenerator<StreamedRecord, void, undefined> {
  try {
    for await (const line of splitLines(response.body, options.lineBytesMax)) {
      if (line.trim() === '') continue; // Keep-alive blank lines, if a server sends them.
      yield parseRecord(line, options);
    }
  } catch (error) {
    // An abort or close by the caller ends the stream; it is not a failure.
    if (options.signal?.aborted || state.closed) return;
    if (error instanceof RaftlogError) throw error;
    if (error instanceof LineTooLongError) {
      throw new RaftlogError('UNEXPECTED_RESPONSE', `stream from ${options.baseUrl}: ${error.message}`, {
        cause: error,
      });
    }
    // The connection broke (node stopped, body timeout): the caller may reconnect from its offset.
    throw new RaftlogNetworkError(options.baseUrl, 'connection reset', error);
  } finally {
    // Also runs when the caller breaks out of its loop: release the connection.
    response.body.destroy();
  }
}

function parseRecord(line: string, options: RecordStreamOptions): StreamedRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new RaftlogError('UNEXPECTED_RESPONSE', `stream from ${options.baseUrl}: a line is not JSON`, {
      cause: error,
    });
  }
  const record = value as Partial<StreamedRecord> | null;
  if (typeof record !== 'object' || record === null || typeof record.offset !== 'number') {
    throw new RaftlogError('UNEXPECTED_RESPONSE', `stream from ${options.baseUrl}: a line is not a record`);
  }
  if (typeof record.partition !== 'number') {
    if (options.partition === undefined) {
      throw new RaftlogError(
        'UNEXPECTED_RESPONSE',
        `stream from ${options.baseUrl}: a record lacks its partition`,
      );
    }
    record.partition = options.partition;
  }
  return record as StreamedRecord;
}

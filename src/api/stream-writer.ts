// Writes a record stream onto a raw HTTP response, as NDJSON or as Server-Sent Events. Writes go
// straight to the socket's stream; a writer reports when it is full so that the sources stop
// reading the log until 'drain' (a slow reader costs one chunk per source, not a growing buffer).

import type { ServerResponse } from 'node:http';
import type { StoredRecord } from '../broker/facade.js';
import type { Encoding } from '../wire/types.js';
import { NDJSON_CONTENT_TYPE, NODE_HEADER } from '../wire/types.js';
import { JsonBytesWriter } from './fetch-json.js';

export type StreamFormat = 'ndjson' | 'sse';

export const SSE_CONTENT_TYPE = 'text/event-stream';
/** An SSE comment this often keeps proxies and clients from closing an idle stream. */
export const SSE_KEEP_ALIVE_INTERVAL_MS = 15_000;
/** On server close, a stream whose reader does not take its last bytes is cut after this. */
export const STREAM_CLOSE_GRACE_MS = 1000;
const SSE_KEEP_ALIVE = ': keep-alive\n\n';

/** The format a request asks for: SSE when its Accept names text/event-stream, else NDJSON. */
export function formatOf(accept: string | undefined): StreamFormat {
  return accept?.includes(SSE_CONTENT_TYPE) ? 'sse' : 'ndjson';
}

export class StreamWriter {
  private readonly abortController = new AbortController();
  private keepAliveTimer: NodeJS.Timeout | null = null;
  /** Aborts when the client goes away or the stream ends: sources stop reading. */
  readonly signal: AbortSignal = this.abortController.signal;

  constructor(
    private readonly response: ServerResponse,
    readonly format: StreamFormat,
    private readonly encoding: Encoding,
  ) {
    response.once('close', () => this.stop());
  }

  get closed(): boolean {
    return this.signal.aborted;
  }

  /** Sends the status and headers now, so the client knows the stream is open before records. */
  open(nodeId: number): void {
    // A stream may stay idle for hours: no socket timeout may end it.
    this.response.socket?.setTimeout(0);
    this.response.writeHead(200, {
      'content-type': this.format === 'sse' ? `${SSE_CONTENT_TYPE}; charset=utf-8` : NDJSON_CONTENT_TYPE,
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      [NODE_HEADER]: String(nodeId),
    });
    this.response.flushHeaders();
    if (this.format === 'sse') {
      this.keepAliveTimer = setInterval(() => this.write(SSE_KEEP_ALIVE), SSE_KEEP_ALIVE_INTERVAL_MS);
      this.keepAliveTimer.unref();
    }
  }

  /** Writes one chunk of records of `partition`; false when the socket buffer is full. */
  writeRecords(records: readonly StoredRecord[], partition: number): boolean {
    if (records.length === 0) return !this.closed;
    const writer = new JsonBytesWriter(records.length * 256);
    for (const record of records) {
      if (this.format === 'sse') writer.ascii(`id: ${partition}:${record.offset}\ndata: `);
      writer.streamRecord(record, this.encoding, partition);
      writer.ascii(this.format === 'sse' ? '\n\n' : '\n');
    }
    return this.write(writer.bytes());
  }

  /** Writes one record already in its NDJSON form (relayed from another node). */
  writeJsonLine(line: string): boolean {
    if (this.format === 'ndjson') return this.write(`${line}\n`);
    const record = JSON.parse(line) as { partition: number; offset: number };
    return this.write(`id: ${record.partition}:${record.offset}\ndata: ${line}\n\n`);
  }

  /** Resolves when the socket can take more, or the stream is closed. */
  drained(): Promise<void> {
    if (this.closed || !this.response.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        this.response.off('drain', finish);
        this.signal.removeEventListener('abort', finish);
        resolve();
      };
      this.response.on('drain', finish);
      this.signal.addEventListener('abort', finish, { once: true });
    });
  }

  /** Ends the response (every source is done, or the server closes). */
  end(): void {
    if (this.response.writableEnded) return;
    this.stop();
    this.response.end();
  }

  /**
   * Ends the stream because the server is closing: the reader gets the end of the body, and its
   * connection is closed so that the server's close does not wait on it.
   */
  endForShutdown(): void {
    this.end();
    const socket = this.response.socket;
    if (!socket || socket.destroyed) return;
    socket.end();
    setTimeout(() => socket.destroy(), STREAM_CLOSE_GRACE_MS).unref();
  }

  private write(text: string | Buffer): boolean {
    if (this.closed || text.length === 0) return !this.closed;
    return this.response.write(text);
  }

  private stop(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
    this.abortController.abort();
  }
}

// `raftlog tail TOPIC`: prints records of every partition (or one). Without --follow it reads up to
// each partition's high watermark and exits; with --follow it keeps printing until Ctrl-C, over the
// stream routes when the server has them, else (404) by long-poll fetch. Ctrl-C exits 0.

import {
  type ConsumedRecord,
  type RaftlogClient,
  RaftlogError,
  type StreamedRecord,
} from '../client/index.js';
import type { FetchedRecord } from '../wire/types.js';
import { EXIT_OK } from './errors.js';
import { oneLine } from './format.js';
import { type CliIo, interruptSignal } from './io.js';
import { type ClientFlags, type StartPosition, withClient } from './options.js';

export interface TailOptions extends ClientFlags {
  topic: string;
  partition?: number;
  /** Default: earliest, or latest with follow. */
  from?: StartPosition;
  follow?: boolean;
}

/** Long-poll of each fetch when following by fetch. */
export const FOLLOW_WAIT_MS = 5_000;

type Printer = (record: FetchedRecord & { partition: number }) => void;

export async function tailCommand(options: TailOptions, io: CliIo): Promise<number> {
  const { signal, stopListening } = interruptSignal(io);
  try {
    return await withClient(options, io, async (client) => {
      const print = printer(io, options.json === true);
      if (options.follow) await follow(client, options, print, io, signal);
      else await readToEnd(client, options, print, signal);
      return EXIT_OK;
    });
  } catch (error) {
    if (signal.aborted) return EXIT_OK; // Ctrl-C is how a tail ends.
    throw error;
  } finally {
    stopListening();
  }
}

async function readToEnd(client: RaftlogClient, options: TailOptions, print: Printer, signal: AbortSignal) {
  const consumer = client.consumer({
    topic: options.topic,
    partitions: options.partition === undefined ? undefined : [options.partition],
    from: options.from ?? 'earliest',
  });
  for await (const record of consumer.records({ follow: false, signal })) print(record);
}

/** Follows over the stream route; falls back to fetch when the route is missing or the stream breaks. */
async function follow(
  client: RaftlogClient,
  options: TailOptions,
  print: Printer,
  io: CliIo,
  signal: AbortSignal,
): Promise<void> {
  const from = options.from ?? 'latest';
  const positions = new Map<number, number>();
  let opened = false;
  let note: string | undefined;
  try {
    const stream = await client.openStream(options.topic, options.partition, { offset: from }, { signal });
    opened = true;
    for await (const record of stream) {
      positions.set(record.partition, record.offset + 1);
      print(record);
    }
    if (signal.aborted) return;
    note = `the stream from ${client.url} ended`;
  } catch (error) {
    if (signal.aborted) throw error;
    // A node without the stream routes answers 404 NOT_FOUND (UNKNOWN_TOPIC is a real error).
    const routeMissing = !opened && error instanceof RaftlogError && error.code === 'NOT_FOUND';
    const broke = opened && error instanceof RaftlogError && error.code === 'NETWORK_ERROR';
    if (!routeMissing && !broke) throw error;
    if (broke) note = `the stream broke (${error.message})`;
  }
  // Partitions the stream showed nothing of start again from --from (with 'latest', records
  // committed while switching over can be missed there; the others continue where they were).
  if (note) io.stderr.write(`raftlog: ${note}; following by fetch\n`);
  await followByFetch(client, options, from, positions, print, signal);
}

async function followByFetch(
  client: RaftlogClient,
  options: TailOptions,
  from: StartPosition,
  positions: Map<number, number>,
  print: Printer,
  signal: AbortSignal,
): Promise<void> {
  const consumer = client.consumer({
    topic: options.topic,
    partitions: options.partition === undefined ? undefined : [options.partition],
    from,
    waitMs: FOLLOW_WAIT_MS,
  });
  for (const [partition, offset] of positions) consumer.seek(partition, offset);
  for await (const record of consumer.records({ follow: true, signal })) print(record);
}

function printer(io: CliIo, json: boolean): Printer {
  if (json) {
    return (record) => {
      const { partition, offset, timestamp, key, value, headers } = record as ConsumedRecord | StreamedRecord;
      io.stdout.write(`${JSON.stringify({ partition, offset, timestamp, key, value, headers })}\n`);
    };
  }
  return (record) => {
    const key = record.key === undefined || record.key === null ? '-' : oneLine(record.key);
    io.stdout.write(`${record.partition}:${record.offset} ${key} ${oneLine(record.value)}\n`);
  };
}

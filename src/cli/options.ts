// Flag parsing and validation shared by the commands: integers with bounds, listen addresses,
// peer lists, server URLs, persistence modes, start offsets. A bad value is a UsageError (exit 2)
// whose message names the flag.

import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_URL, normalizeBaseUrl, RaftlogClient } from '../client/index.js';
import type { PersistenceMode } from '../wire/types.js';
import { UsageError } from './errors.js';
import type { CliIo } from './io.js';

export const PERSISTENCE_MODES: readonly PersistenceMode[] = ['sync', 'async', 'memory'];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type CliLogLevel = (typeof LOG_LEVELS)[number];

/** A commander argument parser for an integer in [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = parseInteger(value);
    if (parsed === undefined || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return parsed;
  };
}

function parseInteger(value: string): number | undefined {
  if (!/^\d+$/.test(value.trim())) return undefined;
  const parsed = Number(value);
  return Number.isSafeInteger(parsed) ? parsed : undefined;
}

export function persistenceMode(value: string): PersistenceMode {
  if (!(PERSISTENCE_MODES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${PERSISTENCE_MODES.join(', ')}`);
  }
  return value as PersistenceMode;
}

export function logLevel(value: string): CliLogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as CliLogLevel;
}

export type StartPosition = 'earliest' | 'latest' | number;

export function startPosition(value: string): StartPosition {
  if (value === 'earliest' || value === 'latest') return value;
  const offset = parseInteger(value);
  if (offset === undefined)
    throw new InvalidArgumentError('expected earliest, latest or an offset (integer >= 0)');
  return offset;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces are not implied: host defaults to 127.0.0.1). */
export function listenAddress(value: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(value.trim());
  const port = match ? parseInteger(match[3]!) : undefined;
  if (!match || port === undefined || port < 1 || port > 65535) {
    throw new InvalidArgumentError('expected host:port, e.g. 127.0.0.1:9090 (port 1 to 65535)');
  }
  const host = match[1] ?? (match[2] || '127.0.0.1');
  return { host, port };
}

/** URL of a listen address, as peers would dial it by default. */
export function urlOf(address: ListenAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `http://${host}:${address.port}`;
}

/** `1=http://127.0.0.1:9090,2=http://127.0.0.1:9091`: every voting node, id → URL it is dialed at. */
export function peerList(value: string): Map<number, string> {
  const peers = new Map<number, string>();
  for (const entry of value.split(',')) {
    const equals = entry.indexOf('=');
    const id = equals > 0 ? parseInteger(entry.slice(0, equals)) : undefined;
    if (id === undefined || id < 1) {
      throw new InvalidArgumentError(`'${entry}' is not ID=URL with ID an integer >= 1`);
    }
    if (peers.has(id)) throw new InvalidArgumentError(`node ${id} is listed twice`);
    const url = entry.slice(equals + 1).trim();
    try {
      peers.set(id, normalizeBaseUrl(url));
    } catch (error) {
      throw new InvalidArgumentError(`node ${id}: ${(error as Error).message}`);
    }
  }
  return peers;
}

/** Adds --server and --json to a client command. */
export function clientOptions(command: Command, json = true): Command {
  command.option(
    '--server <urls>',
    'nodes of the cluster, comma-separated; any one will do (default: $RAFTLOG_URL, then http://127.0.0.1:9090)',
  );
  if (json) command.option('--json', 'machine-readable output (JSON)');
  return command;
}

/** Bootstrap URLs in one --server or $RAFTLOG_URL value, at most this many. */
export const SERVER_URLS_MAX = 64;

/**
 * The node URLs from --server, else $RAFTLOG_URL, else the default: a comma-separated list,
 * validated and without duplicates. The client learns the rest of the cluster from the first
 * node that answers.
 */
export function serverUrls(flag: string | undefined, io: CliIo): string[] {
  const fromEnv = io.env.RAFTLOG_URL?.trim();
  const value = flag ?? (fromEnv ? fromEnv : DEFAULT_URL);
  const source = flag !== undefined ? '--server' : fromEnv ? '$RAFTLOG_URL' : 'default URL';
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new UsageError(`${source}: give at least one node URL`);
  if (entries.length > SERVER_URLS_MAX) {
    throw new UsageError(`${source}: at most ${SERVER_URLS_MAX} URLs (any few nodes will do)`);
  }
  const urls: string[] = [];
  for (const entry of entries) {
    try {
      const url = normalizeBaseUrl(entry);
      if (!urls.includes(url)) urls.push(url);
    } catch (error) {
      throw new UsageError(`${source}: ${(error as Error).message}`);
    }
  }
  return urls;
}

/** The first URL of --server, $RAFTLOG_URL or the default (for commands that probe one node). */
export function serverUrl(flag: string | undefined, io: CliIo): string {
  return serverUrls(flag, io)[0]!;
}

/** Flags every client command has. */
export interface ClientFlags {
  server?: string;
  json?: boolean;
}

/** A client for the command's --server list; the caller closes it. */
export function clientFor(flag: string | undefined, io: CliIo): RaftlogClient {
  const urls = serverUrls(flag, io);
  // A few quick retries ride out a leader election without making a typo'd --server slow; one
  // more per listed node, so that every listed node is tried when the first ones are down.
  const retry = { attemptsMax: Math.max(3, urls.length + 1), backoffMs: 100 };
  return new RaftlogClient({ urls, dispatcher: io.dispatcher, retry });
}

/** Runs body with a client for the flags, closing it afterwards. */
export async function withClient<T>(
  flags: ClientFlags,
  io: CliIo,
  body: (client: RaftlogClient) => Promise<T>,
): Promise<T> {
  const client = clientFor(flags.server, io);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

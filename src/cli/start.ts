// `raftlog start`: validates the node's flags, sizes the process's V8 heap for a node
// (broker-heap.ts), starts it through startServer (the composition root in src/api/server.ts) and
// shuts it down cleanly on SIGTERM/SIGINT: close() within 10 s, else a forced exit with code 1. A
// second interrupt forces the exit at once.

import { resolve } from 'node:path';
import type { LogLevel, ServerOptions } from '../api/server.js';
import type { PersistenceMode } from '../wire/types.js';
import { brokerHeapFlags } from './broker-heap.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, UsageError } from './errors.js';
import type { CliIo, NodeHandle } from './io.js';
import { type ListenAddress, urlOf } from './options.js';

export interface StartOptions {
  id?: number;
  data?: string;
  listen?: ListenAddress;
  peers?: Map<number, string>;
  persistence?: PersistenceMode;
  logLevel?: LogLevel;
  /** The data directory's free-space floor (bytes). */
  diskFreeMinBytes?: number;
  /** Bytes of memory-topic data the node holds at most (absent: the broker's default). */
  memoryTopicsMaxBytes?: number;
  /** Not a flag: lets tests shorten the forced-exit delay. */
  shutdownTimeoutMs?: number;
}

/** How long a clean shutdown may take before the process exits anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** The ServerOptions of the flags, with the single-node defaults; throws UsageError when invalid. */
export function serverOptionsOf(options: StartOptions): ServerOptions {
  const nodeId = options.id ?? 1;
  const listen = options.listen ?? { host: '127.0.0.1', port: 9090 };
  const peers = options.peers ?? new Map([[nodeId, urlOf(listen)]]);
  if (!peers.has(nodeId)) {
    const listed = [...peers.keys()].join(', ');
    throw new UsageError(
      `--id ${nodeId} is not in --peers (which lists nodes ${listed}); list every node, this one too`,
    );
  }
  return {
    nodeId,
    dataDir: resolve(options.data ?? './raftlog-data'),
    listen,
    peers,
    defaultPersistence: options.persistence ?? 'async',
    logLevel: options.logLevel ?? 'info',
    ...(options.diskFreeMinBytes === undefined ? {} : { diskFreeBytesMin: options.diskFreeMinBytes }),
    ...(options.memoryTopicsMaxBytes === undefined
      ? {}
      : { memoryTopicsBytesMax: options.memoryTopicsMaxBytes }),
  };
}

/** Runs a node until interrupted; resolves to the exit code. */
export async function startCommand(options: StartOptions, io: CliIo): Promise<number> {
  const serverOptions = serverOptionsOf(options);
  const heapFlags = brokerHeapFlags(io.execArgv);
  if (heapFlags !== null) io.setV8Flags(heapFlags);
  const start = io.startServer ?? (await import('../api/server.js')).startServer;
  // Listen for signals before starting, so an early Ctrl-C still shuts down cleanly.
  const interrupts: string[] = [];
  let wake: (() => void) | undefined;
  const stopListening = io.onInterrupt((signal) => {
    interrupts.push(signal);
    if (interrupts.length >= 2) {
      io.stderr.write(`raftlog: ${signal} again, exiting without a clean shutdown\n`);
      io.exit(EXIT_RUNTIME);
    }
    wake?.();
  });
  try {
    const server = await startOrExplain(start, serverOptions);
    if (interrupts.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return await shutDown(server, io, options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS);
  } finally {
    stopListening();
  }
}

async function startOrExplain(
  start: (options: ServerOptions) => Promise<NodeHandle>,
  options: ServerOptions,
): Promise<NodeHandle> {
  try {
    return await start(options);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const address = `${options.listen.host}:${options.listen.port}`;
    if (code === 'EADDRINUSE')
      throw new CliError(`${address} is already in use (is another node running there?)`);
    if (code === 'EADDRNOTAVAIL') throw new CliError(`cannot listen on ${address}: no such local address`);
    if (code === 'EACCES')
      throw new CliError(`no permission to listen on ${address} or to use ${options.dataDir}`);
    throw error;
  }
}

async function shutDown(server: NodeHandle, io: CliIo, timeoutMs: number): Promise<number> {
  const force = setTimeout(() => {
    io.stderr.write(`raftlog: node ${server.nodeId} did not shut down within ${timeoutMs / 1000} s\n`);
    io.exit(EXIT_RUNTIME);
  }, timeoutMs);
  try {
    await server.close();
    return EXIT_OK;
  } finally {
    clearTimeout(force);
  }
}

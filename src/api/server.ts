// The composition root of one node: the broker runtime, its HTTP API (fastify) and the peer
// transport on the same port. `raftlog start` and `raftlog dev` call startServer.

import type { PersistenceMode } from '../wire/types.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerOptions {
  nodeId: number;
  /** This node's data directory (created if missing). */
  dataDir: string;
  /** Where this node serves HTTP and peer connections. */
  listen: { host: string; port: number };
  /** Every voting node of the cluster, this one included: id → URL the others dial. */
  peers: Map<number, string>;
  /** Persistence mode of topics created without one. */
  defaultPersistence: PersistenceMode;
  logLevel: LogLevel;
}

export interface RunningServer {
  nodeId: number;
  /** The URL this node serves on. */
  url: string;
  /**
   * Shuts down cleanly: hands leadership to caught-up peers where possible, flushes buffered
   * writes, closes connections. Resolves when done.
   */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  // Being built in this change set (issue 4); the CLI is written against this signature.
  throw new Error(`startServer(node ${options.nodeId}): the broker runtime is not wired yet`);
}

// Real raftlog node processes on 127.0.0.1 for integration tests: start, kill -9, restart,
// and stop every process by PID at the end. Nodes run the built CLI (dist/), as a user would.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'bin/raftlog');

export interface NodeHandle {
  id: number;
  port: number;
  url: string;
  process: ChildProcess | null;
  output: string[];
}

export interface HttpResult {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whichever contract shape the route returns
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** Ports the OS says are free right now (bound to port 0, then released). */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolvePort, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolvePort(server));
        }),
    ),
  );
  for (const server of servers) {
    const address = server.address();
    if (address && typeof address === 'object') ports.push(address.port);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export class ProcessCluster {
  readonly nodes = new Map<number, NodeHandle>();
  readonly dataDir: string;
  /** More `raftlog start` flags, per node (e.g. --disk-free-min-bytes). */
  readonly extraArgs = new Map<number, string[]>();
  private readonly pools = new Map<number, Pool>();

  private constructor(
    readonly size: number,
    ports: number[],
    readonly persistence: string,
  ) {
    if (!existsSync(join(root, 'dist/cli/main.js'))) {
      throw new Error('dist/ is not built: run `npm run build` (npm test builds before vitest)');
    }
    this.dataDir = mkdtempSync(join(tmpdir(), 'raftlog-it-'));
    ports.forEach((port, i) => {
      const id = i + 1;
      this.nodes.set(id, { id, port, url: `http://127.0.0.1:${port}`, process: null, output: [] });
    });
  }

  static async create(size: number, persistence = 'async'): Promise<ProcessCluster> {
    return new ProcessCluster(size, await freePorts(size), persistence);
  }

  private peersSpec(): string {
    return [...this.nodes.values()].map((n) => `${n.id}=${n.url}`).join(',');
  }

  start(id: number): void {
    const node = this.node(id);
    if (node.process) throw new Error(`node ${id} is already running`);
    const child = spawn(
      process.execPath,
      [
        bin,
        'start',
        '--id',
        String(id),
        '--data',
        this.nodeDataDir(id),
        '--listen',
        `127.0.0.1:${node.port}`,
        '--peers',
        this.peersSpec(),
        '--persistence',
        this.persistence,
        '--log-level',
        'info',
        ...(this.extraArgs.get(id) ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (chunk: Buffer) => {
      node.output.push(chunk.toString());
      if (node.output.length > 2000) node.output.splice(0, 1000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', () => {
      if (node.process === child) node.process = null;
    });
    node.process = child;
  }

  /** Where node `id` keeps its data. */
  nodeDataDir(id: number): string {
    return join(this.dataDir, `node-${id}`);
  }

  startAll(): void {
    for (const id of this.nodes.keys()) this.start(id);
  }

  /** Sends a signal to a node (SIGKILL by default) and waits until its process has exited. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<number | null> {
    const node = this.node(id);
    const child = node.process;
    if (!child) return null;
    const exited = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => resolveExit(code)),
    );
    child.kill(signal);
    const code = await withTimeout(exited, timeoutMs, `node ${id} did not exit after ${signal}`);
    node.process = null;
    await this.pools.get(id)?.destroy();
    this.pools.delete(id);
    return code;
  }

  isRunning(id: number): boolean {
    return this.node(id).process !== null;
  }

  node(id: number): NodeHandle {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  /** One HTTP request to a node; network errors come back as status 0. */
  async request(
    id: number,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = 10_000,
  ): Promise<HttpResult> {
    let pool = this.pools.get(id);
    if (!pool) {
      pool = new Pool(this.node(id).url, { connections: 4 });
      this.pools.set(id, pool);
    }
    try {
      const response = await pool.request({
        method: method as 'GET',
        path,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await response.body.text();
      return { status: response.statusCode, body: text ? JSON.parse(text) : null, headers: response.headers };
    } catch (error) {
      return {
        status: 0,
        body: { error: { code: 'NETWORK', message: (error as Error).message } },
        headers: {},
      };
    }
  }

  /**
   * Produces through `nodeId` until it answers 200, retrying what a failover answers (503, 504,
   * no connection) every 50 ms up to `deadlineMs`; then returns the last answer.
   */
  async produceRetrying(
    nodeId: number,
    topic: string,
    records: Array<{ key?: string; value: string; partition?: number }>,
    deadlineMs: number,
  ): Promise<HttpResult> {
    for (;;) {
      const res = await this.request(nodeId, 'POST', `/v1/topics/${topic}/records`, {
        records,
        timeoutMs: 2000,
      });
      if (res.status === 200 || Date.now() >= deadlineMs) return res;
      if (res.status !== 503 && res.status !== 504 && res.status !== 0) return res;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Polls until every running node answers /readyz with 200. */
  async waitReady(timeoutMs = 20_000, ids?: number[]): Promise<void> {
    const targets = ids ?? [...this.nodes.keys()].filter((id) => this.isRunning(id));
    await eventually(
      async () => {
        const results = await Promise.all(
          targets.map((id) => this.request(id, 'GET', '/readyz', undefined, 1000)),
        );
        return results.every((r) => r.status === 200);
      },
      timeoutMs,
      `nodes ${targets.join(',')} not ready: ${this.tails(targets)}`,
    );
  }

  tails(ids: number[]): string {
    return ids.map((id) => `\n--- node ${id}\n${this.node(id).output.join('').slice(-2000)}`).join('');
  }

  /** Stops every process by PID (SIGKILL), closes clients, removes the data. */
  async destroy(): Promise<void> {
    for (const id of this.nodes.keys()) await this.kill(id, 'SIGKILL').catch(() => undefined);
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Polls an async condition until it holds, or throws `message` at the deadline. */
export async function eventually(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  message: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (await condition()) return;
  throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// `raftlog dev`: a local cluster of N nodes as child processes of this one (`raftlog start` with
// the right flags), their logs tagged [n1], [n2]... and made readable, and on Ctrl-C/SIGTERM every
// child stopped by PID: SIGTERM, then SIGKILL after 10 s. A child that dies on its own is reported.
// With --chaos, node-to-node links run through proxies (src/cli/chaos/) and a seeded schedule
// kills, pauses and partitions the nodes; clients still reach every node directly.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftlogClient, splitLines } from '../client/index.js';
import { type ChaosTarget, runChaos } from './chaos/faults.js';
import { LinkProxy } from './chaos/proxy.js';
import { CHAOS_NODES_MIN, randomSeed, type ScheduleLimits } from './chaos/schedule.js';
import { CliError, EXIT_OK, EXIT_RUNTIME, UsageError } from './errors.js';
import { type Palette, palette } from './format.js';
import { type CliIo, colorsEnabled, type TextOutput } from './io.js';
import { formatLogLine } from './log-format.js';

export interface DevOptions {
  nodes?: number;
  basePort?: number;
  data?: string;
  /** Kill, pause and partition the nodes on a seeded schedule. */
  chaos?: boolean;
  /** The schedule's seed (default: a random one, printed). */
  seed?: number;
  /** Not flags: tests run a stand-in node and shorten the waits. */
  launcher?: Launcher;
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
  chaosLimits?: ScheduleLimits;
}

/** The command that runs one node, given the arguments of `raftlog start`. */
export type Launcher = (startArgs: string[]) => { command: string; args: string[] };

export const DEV_STOP_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 200;
const LOG_LINE_BYTES_MAX = 1024 * 1024;

const BIN_PATH = fileURLToPath(new URL('../../bin/raftlog', import.meta.url));

/** By default a node is this package's bin/raftlog, run by this same Node. */
export const defaultLauncher: Launcher = (startArgs) => ({
  command: process.execPath,
  args: [BIN_PATH, ...startArgs],
});

interface DevNode {
  id: number;
  url: string;
  tag: string;
  child: ChildProcess;
  exited: Promise<void>;
  running: boolean;
  /** Killed by the chaos schedule: its exit is not reported as unexpected. */
  killedOnPurpose: boolean;
}

export async function devCommand(options: DevOptions, io: CliIo): Promise<number> {
  const count = options.nodes ?? 3;
  const basePort = options.basePort ?? 9090;
  if (basePort + count - 1 > 65535) {
    throw new UsageError(
      `--base-port ${basePort} leaves no room for ${count} nodes (the last port would be over 65535)`,
    );
  }
  const colors = palette(colorsEnabled(io, io.stdout));
  const ids = Array.from({ length: count }, (_, i) => i + 1);
  const urlOf = (id: number) => `http://127.0.0.1:${basePort + id - 1}`;
  if (options.seed !== undefined && options.chaos !== true) throw new UsageError('--seed needs --chaos');
  const chaos = options.chaos === true ? chaosPlan(count, basePort, options.seed) : undefined;
  const peersOf = (self: number) =>
    ids.map((id) => `${id}=${chaos && id !== self ? chaos.proxyUrl(self, id) : urlOf(id)}`).join(',');
  const dataDir = options.data ?? './raftlog-dev';
  const launcher = options.launcher ?? defaultLauncher;
  io.stdout.write(`raftlog dev: starting ${count} node${count === 1 ? '' : 's'} (data in ${dataDir})\n`);
  if (chaos) {
    const chosen = options.seed === undefined ? ' (chosen at random: --seed to replay)' : '';
    io.stdout.write(`raftlog dev: chaos seed ${chaos.seed}${chosen}\n`);
  }
  const proxies = chaos ? await openProxies(chaos, count, basePort) : new Map<string, LinkProxy>();

  const state: DevState = { stopping: false, wakeMain: () => {}, nodeExited: () => {} };
  const specs: LaunchSpec[] = ids.map((id) => {
    const listen = `127.0.0.1:${basePort + id - 1}`;
    const data = join(dataDir, `node-${id}`);
    const startArgs = [
      'start',
      '--id',
      String(id),
      '--listen',
      listen,
      '--peers',
      peersOf(id),
      '--data',
      data,
    ];
    const { command, args } = launcher(startArgs);
    return { id, url: urlOf(id), command, args, io, colors, state };
  });
  const nodes: DevNode[] = specs.map(launch);
  state.nodeExited = () => {
    if (nodes.every((n) => !n.running)) state.wakeMain();
  };

  const interrupts: string[] = [];
  const stopListening = io.onInterrupt((signal) => {
    interrupts.push(signal);
    if (interrupts.length >= 2) killAll(nodes, 'SIGKILL'); // Impatient: no more waiting.
    state.wakeMain();
  });
  const chaosStop = new AbortController();
  try {
    void announceWhenReady(nodes, io, colors, options.readyTimeoutMs ?? READY_TIMEOUT_MS, state, chaos);
    const chaosRun = chaos
      ? startChaos({
          plan: chaos,
          nodes,
          specs,
          proxies,
          io,
          colors,
          signal: chaosStop.signal,
          limits: options.chaosLimits,
        })
      : Promise.resolve();
    await new Promise<void>((resolve) => {
      state.wakeMain = resolve;
      if (interrupts.length > 0 || nodes.every((n) => !n.running)) resolve();
    });
    const crashed = interrupts.length === 0;
    state.stopping = true;
    // Heals the fault in progress first: a stopped node would not hear SIGTERM, a cut link would
    // keep a leader from handing over.
    chaosStop.abort();
    await chaosRun;
    await stopAll(nodes, io, options.stopTimeoutMs ?? DEV_STOP_TIMEOUT_MS);
    if (crashed) {
      io.stderr.write('raftlog: every node of the dev cluster has exited\n');
      return EXIT_RUNTIME;
    }
    io.stdout.write('raftlog dev: stopped\n');
    return EXIT_OK;
  } finally {
    chaosStop.abort();
    await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
    stopListening();
  }
}

interface LaunchSpec {
  id: number;
  url: string;
  command: string;
  args: string[];
  io: CliIo;
  colors: Palette;
  state: DevState;
}

interface DevState {
  stopping: boolean;
  /** Ends the wait of devCommand: an interrupt, or the last node gone. */
  wakeMain: () => void;
  nodeExited: () => void;
}

function launch(spec: LaunchSpec): DevNode {
  const { id, io, colors, state } = spec;
  const tag = colors.tag(id - 1, `[n${id}]`);
  // Own process group: a Ctrl-C in the terminal reaches only us, and we stop each child once,
  // in order (a node that got SIGINT from the terminal and SIGTERM from us would force-exit).
  const child = spawn(spec.command, spec.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: io.env,
    detached: true,
  });
  const node: DevNode = {
    id,
    url: spec.url,
    tag,
    child,
    exited: Promise.resolve(),
    running: true,
    killedOnPurpose: false,
  };
  const output = Promise.all([
    relayLines(child.stdout!, io.stdout, tag, colors),
    relayLines(child.stderr!, io.stderr, tag, colors),
  ]);
  node.exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      io.stderr.write(`${tag} could not start: ${error.message}\n`);
    });
    child.once('close', (code, signal) => {
      node.running = false;
      void output.then(() => {
        if (!state.stopping && !node.killedOnPurpose) {
          const how = signal ? `signal ${signal}` : `code ${code}`;
          io.stderr.write(`${tag} ${colors.red(`exited unexpectedly (${how})`)}\n`);
        }
        state.nodeExited();
        resolve();
      });
    });
  });
  return node;
}

async function relayLines(
  source: NodeJS.ReadableStream,
  output: TextOutput,
  tag: string,
  colors: Palette,
): Promise<void> {
  try {
    for await (const line of splitLines(source as AsyncIterable<Uint8Array>, LOG_LINE_BYTES_MAX)) {
      output.write(`${tag} ${formatLogLine(line, colors)}\n`);
    }
  } catch (error) {
    output.write(`${tag} (log output dropped: ${(error as Error).message})\n`);
  }
}

/** Polls /healthz of every node until all answer (or die, or the deadline), then prints the hint. */
async function announceWhenReady(
  nodes: DevNode[],
  io: CliIo,
  colors: Palette,
  readyTimeoutMs: number,
  state: DevState,
  chaos: ChaosPlan | undefined,
): Promise<void> {
  const clients = nodes.map((n) => new RaftlogClient({ url: n.url, requestTimeoutMs: READY_POLL_MS * 5 }));
  const deadlineMs = Date.now() + readyTimeoutMs;
  try {
    const healthy = new Set<number>();
    while (!state.stopping && Date.now() < deadlineMs) {
      await Promise.all(
        nodes.map(async (node, i) => {
          if (node.running && !healthy.has(node.id) && (await clients[i]!.isHealthy())) healthy.add(node.id);
        }),
      );
      const alive = nodes.filter((n) => n.running);
      if (alive.length === 0 || alive.every((n) => healthy.has(n.id))) break;
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
    if (state.stopping) return;
    const up = nodes.filter((n) => n.running && healthy.has(n.id));
    if (up.length === 0) return; // Every node died: their exits were reported.
    if (up.length < nodes.length) {
      io.stderr.write(`raftlog dev: ${nodes.length - up.length} node(s) not answering /healthz\n`);
    }
    io.stdout.write(readyBanner(nodes, colors, chaos));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

function readyBanner(nodes: DevNode[], colors: Palette, chaos: ChaosPlan | undefined): string {
  const first = nodes[0]!.url;
  const server = first === 'http://127.0.0.1:9090' ? '' : ` --server ${first}`;
  const chaosLines = chaos
    ? [
        `chaos: seed ${chaos.seed}; node-to-node links go through proxies on 127.0.0.1:${chaos.proxyPortFirst}-${chaos.proxyPortLast}, clients reach the nodes directly`,
        `      raftlog verify demo --seconds 120 --server ${nodes.map((n) => n.url).join(',')}`,
      ]
    : [];
  const lines = [
    colors.bold(`raftlog dev: ${nodes.length} node${nodes.length === 1 ? '' : 's'} up`),
    ...nodes.map((n) => `  ${n.tag} ${n.url}`),
    `try:  raftlog topic create demo${server}`,
    `      echo hello | raftlog produce demo${server}`,
    `      raftlog tail demo --offset earliest${server}`,
    server ? `(or export RAFTLOG_URL=${first})` : '',
    ...chaosLines,
    'Ctrl-C stops the cluster.',
  ];
  return `${lines.filter((line) => line !== '').join('\n')}\n`;
}

/** SIGTERM to every running child by PID, then SIGKILL to those still running after the timeout. */
async function stopAll(nodes: DevNode[], io: CliIo, stopTimeoutMs: number): Promise<void> {
  killAll(nodes, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), stopTimeoutMs);
  });
  const allExited = Promise.all(nodes.map((n) => n.exited)).then(() => false);
  try {
    if (await Promise.race([allExited, timedOut])) {
      const stuck = nodes.filter((n) => n.running);
      io.stderr.write(
        `raftlog dev: killing ${stuck.map((n) => `n${n.id}`).join(', ')} after ${stopTimeoutMs} ms\n`,
      );
      killAll(stuck, 'SIGKILL');
      await Promise.all(nodes.map((n) => n.exited));
    }
  } finally {
    clearTimeout(timer);
  }
}

function killAll(nodes: DevNode[], signal: NodeJS.Signals): void {
  for (const node of nodes) {
    if (!node.running || node.child.pid === undefined) continue;
    try {
      process.kill(node.child.pid, signal);
    } catch {
      // Already gone between the check and the kill.
    }
  }
}

interface ChaosPlan {
  seed: number;
  proxyPortFirst: number;
  proxyPortLast: number;
  /** The URL node `from` dials node `to` at: the proxy of that directed link. */
  proxyUrl(from: number, to: number): string;
  proxyPort(from: number, to: number): number;
}

/**
 * Proxy ports: the N × (N − 1) ports right after the node ports, one per directed link, so node
 * i's --peers lists itself at its own port and every other node at the proxy of the link i → j.
 */
function chaosPlan(count: number, basePort: number, seed: number | undefined): ChaosPlan {
  if (count < CHAOS_NODES_MIN) {
    throw new UsageError(
      `--chaos needs at least ${CHAOS_NODES_MIN} nodes: with fewer, any fault stops the cluster`,
    );
  }
  const proxyPortFirst = basePort + count;
  const proxyPortLast = proxyPortFirst + count * (count - 1) - 1;
  if (proxyPortLast > 65535) {
    throw new UsageError(
      `--base-port ${basePort} leaves no room for the chaos proxies (ports up to ${proxyPortLast})`,
    );
  }
  const proxyPort = (from: number, to: number) =>
    proxyPortFirst + (from - 1) * (count - 1) + (to < from ? to - 1 : to - 2);
  return {
    seed: seed ?? randomSeed(),
    proxyPortFirst,
    proxyPortLast,
    proxyPort,
    proxyUrl: (from, to) => `http://127.0.0.1:${proxyPort(from, to)}`,
  };
}

const linkKey = (from: number, to: number) => `${from}->${to}`;

async function openProxies(
  plan: ChaosPlan,
  count: number,
  basePort: number,
): Promise<Map<string, LinkProxy>> {
  const proxies = new Map<string, LinkProxy>();
  try {
    for (let from = 1; from <= count; from++) {
      for (let to = 1; to <= count; to++) {
        if (from === to) continue;
        const listenPort = plan.proxyPort(from, to);
        try {
          proxies.set(
            linkKey(from, to),
            await LinkProxy.listen({ listenPort, targetPort: basePort + to - 1 }),
          );
        } catch (error) {
          throw new CliError(
            `chaos proxy: cannot listen on 127.0.0.1:${listenPort} (${(error as Error).message})`,
          );
        }
      }
    }
    return proxies;
  } catch (error) {
    await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
    throw error;
  }
}

/** Runs the schedule on the children and proxies until `signal`; resolves once the last fault is healed. */
function startChaos(run: {
  plan: ChaosPlan;
  nodes: DevNode[];
  specs: LaunchSpec[];
  proxies: Map<string, LinkProxy>;
  io: CliIo;
  colors: Palette;
  signal: AbortSignal;
  limits: ScheduleLimits | undefined;
}): Promise<void> {
  const { nodes, specs, proxies } = run;
  const { target, close } = chaosTarget({ nodes, specs, proxies, readyTimeoutMs: READY_POLL_MS * 5 });
  const print = (line: string) => run.io.stdout.write(`${run.colors.bold(line)}\n`);
  return runChaos({ seed: run.plan.seed, target, print, signal: run.signal, limits: run.limits }).finally(
    close,
  );
}

/** The chaos runner's handle on the children and proxies. */
function chaosTarget(cluster: {
  nodes: DevNode[];
  specs: LaunchSpec[];
  proxies: Map<string, LinkProxy>;
  readyTimeoutMs: number;
}): { target: ChaosTarget; close: () => Promise<void> } {
  const { nodes, specs, proxies } = cluster;
  const clients = nodes.map(
    (n) =>
      new RaftlogClient({
        url: n.url,
        direct: true,
        requestTimeoutMs: cluster.readyTimeoutMs,
        retry: { attemptsMax: 1 },
      }),
  );
  const signal = (id: number, name: NodeJS.Signals) => {
    const node = nodes[id - 1]!;
    if (!node.running || node.child.pid === undefined) return;
    try {
      process.kill(node.child.pid, name);
    } catch {
      // Gone between the check and the signal: its exit is reported.
    }
  };
  const target: ChaosTarget = {
    nodes: nodes.length,
    kill(id) {
      nodes[id - 1]!.killedOnPurpose = true;
      signal(id, 'SIGKILL');
    },
    restart(id) {
      const old = nodes[id - 1]!;
      // The restart waits for the old process to be gone: both would want the port and the data.
      void old.exited.then(() => {
        if (specs[id - 1]!.state.stopping) return;
        nodes[id - 1] = launch(specs[id - 1]!);
      });
    },
    pause: (id) => signal(id, 'SIGSTOP'),
    resume: (id) => signal(id, 'SIGCONT'),
    link(from, to) {
      const proxy = proxies.get(linkKey(from, to));
      if (!proxy) throw new Error(`no proxy for the link n${from} -> n${to}`);
      return proxy;
    },
    async isWhole() {
      const answers = await Promise.all(
        nodes.map((node, i) => node.running && clients[i]!.isReady().catch(() => false)),
      );
      return answers.every(Boolean);
    },
  };
  return { target, close: async () => void (await Promise.all(clients.map((c) => c.close()))) };
}

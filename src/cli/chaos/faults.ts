// Runs the fault schedule against a cluster: waits until the cluster is whole (every node ready),
// a quiet gap, one fault, its duration, the heal; again until stopped. Each fault and each heal is
// one printed line with the time. Stopping heals the fault in progress (continues a paused node,
// restores the links) but does not restart a killed node: the cluster is being shut down.

import { setTimeout as sleep } from 'node:timers/promises';
import { clock } from '../log-format.js';
import type { LinkProxy } from './proxy.js';
import {
  describeFault,
  type Fault,
  faultSchedule,
  linksCut,
  SCHEDULE_LIMITS_DEFAULT,
  type ScheduledFault,
  type ScheduleLimits,
} from './schedule.js';

/** What the runner does to the cluster; dev implements it on its child processes and proxies. */
export interface ChaosTarget {
  readonly nodes: number;
  kill(node: number): void;
  restart(node: number): void;
  pause(node: number): void;
  resume(node: number): void;
  /** The proxy of what `from` sends to `to`. */
  link(from: number, to: number): LinkProxy;
  /** Whether every node is running and answers /readyz now (bounded by its own timeout). */
  isWhole(): Promise<boolean>;
}

export interface ChaosRunOptions {
  seed: number;
  target: ChaosTarget;
  /** One line, without the newline. */
  print: (line: string) => void;
  signal: AbortSignal;
  limits?: ScheduleLimits;
  /** Longest wait for the cluster to be whole before a fault; then the fault is skipped. */
  wholeTimeoutMs?: number;
  /** Faults at most (tests); default: until stopped. */
  faultsMax?: number;
  now?: () => number;
}

const WHOLE_TIMEOUT_MS_DEFAULT = 60_000;
const WHOLE_POLL_MS = 250;

/** Runs until `signal` aborts (or faultsMax faults); resolves once the last fault is healed. */
export async function runChaos(options: ChaosRunOptions): Promise<void> {
  const { target, signal } = options;
  const now = options.now ?? Date.now;
  const startedMs = now();
  const say = (text: string) =>
    options.print(`[chaos] ${clock(now())} +${secondsSince(startedMs, now())} ${text}`);
  const schedule = faultSchedule(options.seed, target.nodes, options.limits ?? SCHEDULE_LIMITS_DEFAULT);
  const faultsMax = options.faultsMax ?? Number.POSITIVE_INFINITY;
  for (let done = 0; done < faultsMax && !signal.aborted; done++) {
    const scheduled = schedule.next().value as ScheduledFault;
    if (!(await waitWhole(target, signal, options.wholeTimeoutMs ?? WHOLE_TIMEOUT_MS_DEFAULT))) {
      if (signal.aborted) return;
      say(
        `cluster not whole after ${(options.wholeTimeoutMs ?? WHOLE_TIMEOUT_MS_DEFAULT) / 1000} s: fault #${scheduled.index} skipped`,
      );
      continue;
    }
    if (!(await pause(scheduled.quietMs, signal))) return;
    apply(target, scheduled.fault);
    say(`#${scheduled.index} ${describeFault(scheduled)}`);
    const stopped = !(await pause(scheduled.durationMs, signal));
    heal(target, scheduled.fault, { restartKilled: !stopped });
    say(`#${scheduled.index} ${healLine(scheduled.fault, stopped)}`);
    if (stopped) return;
  }
}

function apply(target: ChaosTarget, fault: Fault): void {
  if (fault.kind === 'kill') target.kill(fault.node);
  else if (fault.kind === 'pause') target.pause(fault.node);
  else for (const [from, to] of linksCut(fault, target.nodes)) target.link(from, to).cut();
}

function heal(target: ChaosTarget, fault: Fault, how: { restartKilled: boolean }): void {
  if (fault.kind === 'kill') {
    if (how.restartKilled) target.restart(fault.node);
  } else if (fault.kind === 'pause') target.resume(fault.node);
  else for (const [from, to] of linksCut(fault, target.nodes)) target.link(from, to).heal();
}

function healLine(fault: Fault, stopped: boolean): string {
  switch (fault.kind) {
    case 'kill':
      return stopped ? `n${fault.node} stays down (stopping)` : `restart n${fault.node}`;
    case 'pause':
      return `resume n${fault.node} (SIGCONT)`;
    case 'isolate':
      return `heal n${fault.node}'s links`;
    case 'cut-pair':
      return `heal n${fault.from} <-> n${fault.to}`;
    case 'cut-one-way':
      return `heal n${fault.from} -> n${fault.to}`;
  }
}

/** Polls isWhole until true, the timeout, or the abort. */
async function waitWhole(target: ChaosTarget, signal: AbortSignal, timeoutMs: number): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!signal.aborted && Date.now() < deadlineMs) {
    if (await target.isWhole()) return true;
    if (!(await pause(WHOLE_POLL_MS, signal))) return false;
  }
  return false;
}

/** Sleeps; false when aborted first. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function secondsSince(startMs: number, nowMs: number): string {
  return `${((nowMs - startMs) / 1000).toFixed(1)}s`;
}

// The fault schedule of `raftlog dev --chaos`: a pure function of the seed and the node count.
// Policy: one fault at a time, each touching one node or one pair of nodes, healed before the next
// one starts, so a majority of the cluster is always running and connected (with 3 or more nodes).

import { SeededRandom } from '../../raft/random.js';

export type Fault =
  /** SIGKILL, restarted after the fault's duration (same data directory). */
  | { kind: 'kill'; node: number }
  /** SIGSTOP, SIGCONT after the duration: a GC pause, a VM stall. */
  | { kind: 'pause'; node: number }
  /** Every link to and from the node cut. */
  | { kind: 'isolate'; node: number }
  /** Both directions between two nodes cut. */
  | { kind: 'cut-pair'; from: number; to: number }
  /** Only what `from` sends to `to` cut (an asymmetric partition). */
  | { kind: 'cut-one-way'; from: number; to: number };

export type FaultKind = Fault['kind'];

export interface ScheduledFault {
  /** 0, 1, 2…: the fault's place in the schedule. */
  index: number;
  fault: Fault;
  /** Quiet time before the fault, after the cluster is whole again. */
  quietMs: number;
  /** How long the fault lasts before it is healed. */
  durationMs: number;
}

export interface ScheduleLimits {
  quietMsMin: number;
  quietMsMax: number;
  durationMsMin: number;
  durationMsMax: number;
}

export const SCHEDULE_LIMITS_DEFAULT: ScheduleLimits = {
  quietMsMin: 2_000,
  quietMsMax: 5_000,
  durationMsMin: 1_000,
  durationMsMax: 6_000,
};

/** Fewer nodes have no majority left after any one fault. */
export const CHAOS_NODES_MIN = 3;

/** Weights of the kinds: kills and partitions most, as they move leadership and truncate logs. */
const KIND_WEIGHTS: ReadonlyArray<readonly [FaultKind, number]> = [
  ['kill', 3],
  ['pause', 2],
  ['isolate', 2],
  ['cut-pair', 1],
  ['cut-one-way', 2],
];
const WEIGHT_TOTAL = KIND_WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);

/**
 * The schedule for a seed: an endless, deterministic sequence (same seed and node count, same
 * faults in the same order with the same durations). Take what you need from it.
 */
export function* faultSchedule(
  seed: number,
  nodes: number,
  limits: ScheduleLimits = SCHEDULE_LIMITS_DEFAULT,
): Generator<ScheduledFault> {
  if (!(Number.isInteger(nodes) && nodes >= CHAOS_NODES_MIN)) {
    throw new RangeError(`chaos needs at least ${CHAOS_NODES_MIN} nodes, got ${nodes}`);
  }
  if (!(limits.quietMsMin <= limits.quietMsMax && limits.durationMsMin <= limits.durationMsMax)) {
    throw new RangeError('schedule limits: a minimum is over its maximum');
  }
  const random = new SeededRandom(seed);
  const between = (min: number, max: number) => min + random.int(max - min + 1);
  for (let index = 0; ; index++) {
    const fault = drawFault(random, nodes);
    const quietMs = between(limits.quietMsMin, limits.quietMsMax);
    const durationMs = between(limits.durationMsMin, limits.durationMsMax);
    yield { index, fault, quietMs, durationMs };
  }
}

function drawFault(random: SeededRandom, nodes: number): Fault {
  let pick = random.int(WEIGHT_TOTAL);
  let kind: FaultKind = KIND_WEIGHTS[0]![0];
  for (const [candidate, weight] of KIND_WEIGHTS) {
    if (pick < weight) {
      kind = candidate;
      break;
    }
    pick -= weight;
  }
  const node = 1 + random.int(nodes);
  if (kind === 'kill' || kind === 'pause' || kind === 'isolate') return { kind, node };
  // Another node than `node`, uniformly.
  const other = 1 + ((node - 1 + 1 + random.int(nodes - 1)) % nodes);
  return { kind, from: node, to: other };
}

/** The links (from → to) a fault cuts; none for kill and pause. */
export function linksCut(fault: Fault, nodes: number): Array<[number, number]> {
  switch (fault.kind) {
    case 'kill':
    case 'pause':
      return [];
    case 'isolate': {
      const links: Array<[number, number]> = [];
      for (let other = 1; other <= nodes; other++) {
        if (other === fault.node) continue;
        links.push([fault.node, other], [other, fault.node]);
      }
      return links;
    }
    case 'cut-pair':
      return [
        [fault.from, fault.to],
        [fault.to, fault.from],
      ];
    case 'cut-one-way':
      return [[fault.from, fault.to]];
  }
}

/** One line for the fault, e.g. `kill n2 (SIGKILL) for 3.2 s`. */
export function describeFault(scheduled: ScheduledFault): string {
  const { fault } = scheduled;
  const forSeconds = `for ${(scheduled.durationMs / 1000).toFixed(1)} s`;
  switch (fault.kind) {
    case 'kill':
      return `kill n${fault.node} (SIGKILL), restart in ${(scheduled.durationMs / 1000).toFixed(1)} s`;
    case 'pause':
      return `pause n${fault.node} (SIGSTOP) ${forSeconds}`;
    case 'isolate':
      return `isolate n${fault.node} (every link to and from it cut) ${forSeconds}`;
    case 'cut-pair':
      return `cut n${fault.from} <-> n${fault.to} ${forSeconds}`;
    case 'cut-one-way':
      return `cut n${fault.from} -> n${fault.to} (one way) ${forSeconds}`;
  }
}

/** A seed for when none is given: printed, so the run can be replayed. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 1_000_000);
}

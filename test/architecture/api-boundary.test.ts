// The API talks to the broker through its facade (src/broker/facade.ts) and nothing else: no
// group, core, state machine or driver. Besides the facade it may import the broker's coded
// errors and a few pure helpers, named one by one below. src/api/server.ts is exempt: it is the
// composition root that builds the node, its store and transport, and hands the API the facade.

import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { importsOf, repoPath, SRC, sourceFiles } from './source-graph.js';

const BROKER = resolve(SRC, 'broker');
const COMPOSITION_ROOT = resolve(SRC, 'api/server.ts');

/** Broker module → the names the API may import from it; '*' for any. */
const ALLOWED: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['src/broker/facade.ts', new Set(['*'])],
  ['src/broker/errors.ts', new Set(['*'])],
  // Pure functions and constants: they read no node state.
  ['src/broker/metadata-state.ts', new Set(['validateTopicName', 'validateReplicationFactor'])],
  ['src/broker/partitioner.ts', new Set(['partitionForKey'])],
  ['src/broker/groups/protocol.ts', new Set(['SESSION_TIMEOUT_MS_MIN', 'SESSION_TIMEOUT_MS_MAX'])],
  // The wire form of leadership announcements, which the internal route receives.
  ['src/broker/leadership.ts', new Set(['GOSSIP_PATH', 'fromTuple', 'StatusTuple'])],
]);

it('src/api imports from src/broker only the facade, errors and named pure helpers', () => {
  const offending: string[] = [];
  let brokerImports = 0;
  for (const file of sourceFiles(resolve(SRC, 'api'))) {
    if (file === COMPOSITION_ROOT) continue;
    for (const edge of importsOf(file)) {
      if (edge.target === null || !edge.target.startsWith(`${BROKER}/`)) continue;
      brokerImports++;
      const allowed = ALLOWED.get(repoPath(edge.target));
      for (const name of edge.names.length > 0 ? edge.names : ['(module)']) {
        if (!allowed?.has('*') && !allowed?.has(name)) {
          offending.push(`${repoPath(file)}: ${name} from ${edge.specifier}`);
        }
      }
    }
  }
  expect(brokerImports).toBeGreaterThan(10);
  expect(offending).toEqual([]);
});

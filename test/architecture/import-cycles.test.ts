// No import cycle in src/ at run time: a cycle makes module load order matter (a class used before
// its module finished loading is undefined) and tangles the layers of docs/architecture.md. Type-only
// imports are erased by the compiler and may point either way.

import { describe, expect, it } from 'vitest';
import { cyclesOf, importsOf, importsOfText, repoPath, SRC, sourceFiles } from './source-graph.js';

/** Module → the modules of src/ it loads at run time. */
function runtimeGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const targets = importsOf(file)
      .filter((edge) => !edge.typeOnly && edge.target !== null)
      .map((edge) => edge.target!);
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

describe('import cycles', () => {
  it('src/ has none among its run-time imports', () => {
    const graph = runtimeGraph();
    let edges = 0;
    for (const targets of graph.values()) edges += targets.length;
    // The parser found the graph: an empty one would pass for the wrong reason.
    expect(graph.size).toBeGreaterThan(100);
    expect(edges).toBeGreaterThan(graph.size);
    for (const [file, targets] of graph) {
      for (const target of targets)
        expect(graph.has(target), `${repoPath(file)} → ${repoPath(target)}`).toBe(true);
    }
    const cycles = cyclesOf(graph).map((cycle) => cycle.map(repoPath));
    console.log(`import cycles: ${graph.size} modules, ${edges} run-time imports, ${cycles.length} cycles`);
    expect(cycles).toEqual([]);
  });

  it('counts `import { type A }` as run-time and `import type` as erased (verbatimModuleSyntax)', () => {
    const edges = importsOfText(
      '/src/x.ts',
      [
        "import type { A } from './a.js';",
        "import { type B } from './b.js';",
        "export type { C } from './c.js';",
        "export * from './d.js';",
        "import './e.js';",
        "const lazy = () => import('./f.js');",
      ].join('\n'),
    );
    expect(edges.map((edge) => [edge.specifier, edge.typeOnly])).toEqual([
      ['./a.js', true],
      ['./b.js', false],
      ['./c.js', true],
      ['./d.js', false],
      ['./e.js', false],
    ]);
  });

  it('finds a cycle of three, and a module importing itself, and nothing in a chain', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(cyclesOf(graph)).toEqual([['a', 'b', 'c'], ['e']]);
  });
});

// The import graph of src/, read with TypeScript's own parser (no regex over source text), for the
// tests that keep the layers honest: import cycles, the API's boundary with the broker.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SRC = resolve(ROOT, 'src');

export interface ImportEdge {
  /** As written: './node.js', 'fastify'. */
  specifier: string;
  /** The .ts file a relative specifier names (absolute path); null for a package or node: module. */
  target: string | null;
  /**
   * Erased at compile time: `import type …`, `export type … from`. Under verbatimModuleSyntax
   * (tsconfig.json) `import { type A } from` still loads the module, so it is not type-only.
   */
  typeOnly: boolean;
  /** The names imported (`default`, `*` for a namespace or `export *`); empty for a bare import. */
  names: string[];
}

/** Every .ts file under `dir`, recursively, as absolute paths in a stable order. */
export function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = resolve(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files.sort();
}

/** A path relative to the repository, with forward slashes, for messages. */
export function repoPath(path: string): string {
  return relative(ROOT, path).split('\\').join('/');
}

/**
 * The static imports and re-exports of one module's text. Dynamic import() is left out: it loads
 * a module when called, after every module involved has finished loading, so it makes no cycle
 * at load time.
 */
export function importsOfText(fileName: string, text: string): ImportEdge[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      const clause = statement.importClause;
      const names: string[] = [];
      if (clause?.name) names.push('default');
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) names.push('*');
      if (bindings && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) names.push((element.propertyName ?? element.name).text);
      }
      edges.push(edge(fileName, statement.moduleSpecifier.text, clause?.isTypeOnly ?? false, names));
    } else if (
      ts.isExportDeclaration(statement) &&
      statement.moduleSpecifier &&
      ts.isStringLiteral(statement.moduleSpecifier)
    ) {
      const clause = statement.exportClause;
      const names =
        clause && ts.isNamedExports(clause)
          ? clause.elements.map((element) => (element.propertyName ?? element.name).text)
          : ['*'];
      edges.push(edge(fileName, statement.moduleSpecifier.text, statement.isTypeOnly, names));
    }
  }
  return edges;
}

export function importsOf(file: string): ImportEdge[] {
  return importsOfText(file, readFileSync(file, 'utf8'));
}

function edge(fileName: string, specifier: string, typeOnly: boolean, names: string[]): ImportEdge {
  // The sources import './x.js' for './x.ts' (NodeNext resolution).
  const target = specifier.startsWith('.')
    ? resolve(dirname(fileName), specifier.replace(/\.js$/, '.ts'))
    : null;
  return { specifier, target, typeOnly, names };
}

/**
 * The cycles of a directed graph: each strongly connected component of more than one module, or
 * of one that imports itself, as its members in a stable order (Tarjan's algorithm).
 */
export function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    lowLink.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        lowLink.set(node, Math.min(lowLink.get(node)!, lowLink.get(to)!));
      } else if (onStack.has(to)) {
        lowLink.set(node, Math.min(lowLink.get(node)!, index.get(to)!));
      }
    }
    if (lowLink.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) cycles.push(component.sort());
  };
  // The graph of src/ is a few hundred modules deep at most: recursion is fine.
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return cycles;
}

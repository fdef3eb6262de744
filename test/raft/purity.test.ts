// The Raft core must stay pure and deterministic: this scans src/raft/ for anything that would let
// I/O, time or unseeded randomness in.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const raftDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/raft');

interface Finding {
  file: string;
  line: number;
  rule: string;
  text: string;
}

const FORBIDDEN: Array<{ rule: string; pattern: RegExp }> = [
  { rule: 'Date', pattern: /\bDate\b/ },
  { rule: 'Math.random', pattern: /\bMath\.random\b/ },
  {
    rule: 'setTimeout/setInterval/setImmediate',
    pattern: /\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/,
  },
  { rule: 'Promise/async', pattern: /\bPromise\b|\basync\s|\bawait\s/ },
  { rule: 'performance/process', pattern: /\b(performance|process)\s*\./ },
  { rule: 'require', pattern: /\brequire\s*\(/ },
];

/** Strips comments and string contents so that prose mentioning "Date" does not count. */
function codeOnly(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, ' '))
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`/g, '``')
    .replace(/'(?:\\.|[^'\\])*'/g, "''");
}

function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const pattern = /\b(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) specifiers.push(match[1] ?? match[2] ?? '');
  return specifiers;
}

function scanRaftSources(dir: string): Finding[] {
  const findings: Finding[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.ts')) continue;
    const file = join(dir, name);
    const source = readFileSync(file, 'utf8');
    for (const specifier of importsOf(source)) {
      const target = normalize(resolve(dir, specifier));
      if (!specifier.startsWith('./') || dirname(target) !== normalize(dir)) {
        findings.push({ file: name, line: 0, rule: 'import from outside src/raft', text: specifier });
      }
    }
    const lines = codeOnly(source).split('\n');
    lines.forEach((text, i) => {
      for (const { rule, pattern } of FORBIDDEN) {
        if (pattern.test(text)) findings.push({ file: name, line: i + 1, rule, text: text.trim() });
      }
    });
  }
  return findings;
}

describe('src/raft purity', () => {
  it('imports nothing from outside src/raft and uses no clock, timer, promise or unseeded random', () => {
    const findings = scanRaftSources(raftDir);
    expect(findings.map((f) => `${f.file}:${f.line} ${f.rule}: ${f.text}`)).toEqual([]);
  });

  it('would catch each forbidden construct (the scan itself can fail)', () => {
    const samples = [
      "import { readFileSync } from 'node:fs';",
      "import { RawNode } from '../broker/x.js';",
      'const now = Date.now();',
      'const r = Math.random();',
      'setTimeout(() => {}, 1);',
      'const p = new Promise(() => {});',
      'async function f() {}',
    ];
    for (const sample of samples) {
      const rulesHit =
        importsOf(sample).some((s) => !s.startsWith('./')) ||
        FORBIDDEN.some(({ pattern }) => pattern.test(codeOnly(sample)));
      expect(rulesHit, sample).toBe(true);
    }
  });
});

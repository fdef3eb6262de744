// Golden interaction tests: each test/raft/golden/*.txt is a script of steps, each followed by
// `----` and what the step printed. The test replays every script and compares. To accept a
// changed output, rewrite the files and review the diff:
//
//   GOLDEN_REWRITE=1 npx vitest run test/raft/golden.test.ts && git diff test/raft/golden

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InteractionEnv, parseCommand } from './interaction.js';

const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), 'golden');
const SEPARATOR = '----';
const rewrite = process.env.GOLDEN_REWRITE === '1';

/** One step: the comments and blank lines before it, the command, and its expected output. */
interface Step {
  preamble: string[];
  command: string;
  /** 1-based line of the command, for failure messages. */
  line: number;
  expected: string;
}

function parseScript(source: string, file: string): { steps: Step[]; trailer: string[] } {
  const lines = source.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const steps: Step[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      preamble.push(line);
      i++;
      continue;
    }
    if (lines[i + 1] !== SEPARATOR)
      throw new Error(`${file}:${i + 2}: expected ${SEPARATOR} after a command`);
    const output: string[] = [];
    let j = i + 2;
    while (j < lines.length && lines[j] !== '') output.push(lines[j++]!);
    steps.push({ preamble, command: line, line: i + 1, expected: output.join('\n') });
    preamble = [];
    i = j;
  }
  return { steps, trailer: preamble };
}

function render(steps: Step[], outputs: string[], trailer: string[]): string {
  const lines: string[] = [];
  for (const [k, step] of steps.entries()) lines.push(...step.preamble, step.command, SEPARATOR, outputs[k]!);
  lines.push(...trailer);
  return `${lines.join('\n')}\n`;
}

const files = readdirSync(GOLDEN_DIR)
  .filter((name) => name.endsWith('.txt'))
  .sort();

describe('golden interactions', () => {
  it('has scripts to run', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const name of files) {
    it(name.replace(/\.txt$/, ''), () => {
      const path = join(GOLDEN_DIR, name);
      const { steps, trailer } = parseScript(readFileSync(path, 'utf8'), name);
      const env = new InteractionEnv();
      const outputs = steps.map((step) => env.run(parseCommand(step.command)));
      if (rewrite) {
        writeFileSync(path, render(steps, outputs, trailer));
        return;
      }
      for (const [k, step] of steps.entries()) {
        // Compared line by line, so that a failure prints a readable diff.
        expect(outputs[k]!.split('\n'), `${name}:${step.line}: ${step.command}`).toEqual(
          step.expected.split('\n'),
        );
      }
    });
  }
});

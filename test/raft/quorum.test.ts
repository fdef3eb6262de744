// The one place majority arithmetic lives: the size of a quorum, and the highest value a quorum
// has reached, against literal tables rather than the formula itself.

import { describe, expect, it } from 'vitest';
import { quorumSize, quorumValue } from '../../src/raft/quorum.js';

describe('quorum', () => {
  it('a quorum is a strict majority of the voters', () => {
    const table: Array<[voters: number, quorum: number]> = [
      [1, 1],
      [2, 2],
      [3, 2],
      [4, 3],
      [5, 3],
      [6, 4],
      [7, 4],
    ];
    for (const [voters, quorum] of table) expect(quorumSize(voters), `${voters} voters`).toBe(quorum);
  });

  it('the quorum value is the highest value at least a majority has reached', () => {
    const table: Array<[values: number[], expected: number]> = [
      [[7], 7],
      [[7, 3], 3],
      [[1, 5, 3], 3],
      [[9, 9, 0], 9],
      [[4, 1, 3, 2], 2],
      [[5, 5, 1, 1, 5], 5],
      [[0, 8, 6, 2, 4], 4],
    ];
    for (const [values, expected] of table) {
      expect(quorumValue([...values], values.length), values.join(',')).toBe(expected);
    }
  });

  it('reads only the first n values of the scratch array', () => {
    expect(quorumValue([2, 4, 6, 100, 100], 3)).toBe(4);
  });
});

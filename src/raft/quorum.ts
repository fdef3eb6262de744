// Majority arithmetic, in one place: how many voters make a quorum, and the highest value that a
// quorum of them has reached (for commit and for heartbeat rounds).

/** The fewest voters that form a majority of `voterCount`. */
export function quorumSize(voterCount: number): number {
  return (voterCount >> 1) + 1;
}

/**
 * The highest value that a quorum of values[0, n) has reached (n > 0): the quorumSize(n)-th
 * largest. Sorts the scratch array in place by insertion, which allocates nothing
 * (Array.prototype.sort copies into a work array on every call, and this runs on every
 * acknowledgement); n is a handful of voters.
 */
export function quorumValue(values: number[], n: number): number {
  for (let i = 1; i < n; i++) {
    const value = values[i]!;
    let j = i - 1;
    while (j >= 0 && values[j]! < value) {
      values[j + 1] = values[j]!;
      j--;
    }
    values[j + 1] = value;
  }
  return values[quorumSize(n) - 1]!;
}

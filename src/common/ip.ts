/** Address text shared by every module that prints IPs (one RFC 5952 formatter, not four). */

/** IPv6 text from its eight 16-bit groups: the longest run (≥ 2) of zero groups becomes "::", leftmost on ties. */
export function formatIpv6Groups(g: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: readonly number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** The eight groups of a 128-bit address held in a bigint. */
export function ipv6GroupsOfBigint(v: bigint): number[] {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  return g;
}

/** The eight groups of 16 bytes starting at `o`. */
export function ipv6GroupsOfBytes(b: Uint8Array, o = 0): number[] {
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!;
  return g;
}

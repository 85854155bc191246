/**
 * Test-only: how hard the fuzz properties (fast-check) push. `npm test` runs a small, fixed
 * budget (the same inputs every run, so a failure reproduces); `npm run fuzz` a long one from a
 * new seed, printed so that a failure can be replayed with BULWARK_FUZZ_SEED.
 */
export function fuzzSettings(): { seed: number; numRuns: number } {
  const seed = Number(process.env.BULWARK_FUZZ_SEED ?? 20_261_206);
  const numRuns = Number(process.env.BULWARK_FUZZ_RUNS ?? 300);
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(numRuns) || numRuns < 1) throw new Error('BULWARK_FUZZ_SEED and BULWARK_FUZZ_RUNS must be integers (runs ≥ 1)');
  return { seed, numRuns };
}

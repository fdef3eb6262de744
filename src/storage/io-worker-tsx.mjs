// Loads io-worker.ts in a piscina worker thread when raftlog runs from its TypeScript sources
// (vitest, tsx). Node 20 does not pass `--import tsx` on to worker threads, so the worker registers
// tsx itself before importing the TypeScript module. The built package never uses this file: it
// runs dist/storage/io-worker.js directly.
import { register } from 'tsx/esm/api';

register();
const worker = await import('./io-worker.ts');
export default worker.default;

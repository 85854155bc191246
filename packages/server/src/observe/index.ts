// What other contexts use of observe/: the metrics they count into. The registry and the
// endpoints are wired by the composition root (server.ts).
export type { Metrics } from './metrics.js';

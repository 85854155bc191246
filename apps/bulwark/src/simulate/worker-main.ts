import type { VirtualFleet } from './fleet.js';
import { CONNECT, type PartSpec, fleetOf, keepHeapTight, snapshotOf } from './parts.js';

/**
 * A simulator worker process: runs its share of the virtual devices as the parent says
 * (init, connect, readings, stop, finish), and sends a snapshot every second. Started by WorkerPart.
 */
let fleet: VirtualFleet | undefined;
let timer: NodeJS.Timeout | undefined;
const send = (m: unknown) => process.send?.(m);

process.on('message', (m: { kind: 'init'; spec: PartSpec } | { kind: 'connect' | 'readings' | 'stop' | 'finish' }) => {
  void (async () => {
    if (m.kind === 'init') {
      keepHeapTight();
      fleet = fleetOf(m.spec, m.spec.agentLog ? (deviceId, line) => send({ kind: 'log', deviceId, line }) : undefined);
      send({ kind: 'ready' });
    } else if (!fleet) {
      throw new Error(`${m.kind} before init`);
    } else if (m.kind === 'connect') {
      const f = fleet;
      timer = setInterval(() => send({ kind: 'snapshot', snapshot: snapshotOf(f) }), 1000);
      await f.connect(CONNECT);
      send({ kind: 'ready' });
    } else if (m.kind === 'readings') {
      fleet.startReadings();
      send({ kind: 'ready' });
    } else if (m.kind === 'stop') {
      fleet.stopReadings();
      send({ kind: 'ready' });
    } else {
      clearInterval(timer);
      const snapshot = snapshotOf(fleet);
      await fleet.close();
      send({ kind: 'done', snapshot, sendTimes: fleet.counts.sendTimes.toSeries() });
    }
  })().catch((err: unknown) => {
    process.stderr.write(`simulator worker: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));

import { QueueDatabase } from '../queue-db.js';
import { SqliteQueue } from '../queue.js';

/**
 * Test-only child process: `node --import tsx queue-crash-driver.ts FILE OWNERS`. Opens
 * OWNERS queues (`dev-0`…) in one shared queue database; each queues 10 rows (`n` 1-10) in
 * one tick and waits for the commit; dev-K acknowledges its first K rows and marks K+1 sent;
 * then every queue adds row 11 and, before that group commit can run, the process kills
 * itself with SIGKILL: a crash with committed rows, acknowledged rows and rows not yet
 * committed. Prints `committed` before the kill.
 */
const [file, ownersArg] = process.argv.slice(2);
const db = new QueueDatabase(file ?? '');
const limits = { maxItems: 1000, maxBytes: 1_000_000, maxAgeMs: 86_400_000 };
const queues = Array.from({ length: Number(ownersArg ?? 3) }, (_, k) => new SqliteQueue({ db, owner: `dev-${k}` }, limits));
const item = (k: number, n: number) => ({ topic: `devices/dev-${k}/telemetry`, body: JSON.stringify({ k, n }), boot: 'b1', mono: n });
await Promise.all(queues.flatMap((q, k) => Array.from({ length: 10 }, (_, i) => q.add(item(k, i + 1)))));
queues.forEach((q, k) => {
  q.markSent(k + 1);
  q.ack(q.after(0, k).map((r) => r.rowId));
});
db.flush();
process.stdout.write('committed\n');
queues.forEach((q, k) => void q.add(item(k, 11)));
process.kill(process.pid, 'SIGKILL');

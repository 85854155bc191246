import type { DeviceDataRepository, StoredCounts } from '../../lifecycle/index.js';
import type { SqlClient, SqlExecutor } from '../sql-client.js';

type Counts = StoredCounts;

/** Tables keyed by device, and what the count of each is called in a receipt. */
const READINGS: readonly [keyof Counts, string][] = [
  ['telemetry', 'telemetry'],
  ['rollups', 'telemetry_rollups'],
  ['feed', 'telemetry_feed'],
];
const DESCRIBING: readonly [keyof Counts, string][] = [
  ['deadLetters', 'dead_letters'],
  ['health', 'device_health'],
  ['events', 'device_events'],
  ['twin', 'device_twins'],
  ['commands', 'device_commands'],
];
const ALERT_NOTIFICATIONS = 'alert_notifications WHERE alert_id IN (SELECT id FROM alerts WHERE device_id = $1)';
const UNUSED_CLAIM_TOKENS = 'claim_tokens WHERE device_id = $1 AND used_at IS NULL';

interface LetterRow {
  id: string;
  body: string;
}
interface Batch {
  readings?: { deviceId?: unknown }[];
}

const n = async (tx: SqlExecutor, from: string, id: string) => Number((await tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${from}`, [id]))?.n ?? 0);

export class SqlDeviceDataRepository implements DeviceDataRepository {
  constructor(private readonly db: SqlClient) {}

  count(deviceId: string): Promise<Counts> {
    return this.db.transaction(async (tx) => {
      const out: Record<string, number> = {};
      for (const [key, table] of [...READINGS, ...DESCRIBING]) out[key] = await n(tx, `${table} WHERE device_id = $1`, deviceId);
      out.alerts = await n(tx, 'alerts WHERE device_id = $1', deviceId);
      out.alertNotifications = await n(tx, ALERT_NOTIFICATIONS, deviceId);
      out.claimTokens = await n(tx, UNUSED_CLAIM_TOKENS, deviceId);
      out.webhookDeadLetterReadings = (await this.#letters(tx, deviceId)).reduce((a, l) => a + l.mine, 0);
      return out as unknown as Counts;
    });
  }

  erase(deviceId: string): Promise<Counts> {
    return this.#apply(deviceId, null);
  }

  pseudonymise(deviceId: string, pseudonym: string): Promise<Counts> {
    return this.#apply(deviceId, pseudonym);
  }

  async #apply(deviceId: string, pseudonym: string | null): Promise<Counts> {
    return this.db.transaction(async (tx) => {
      const out: Record<string, number> = {};
      for (const [key, table] of READINGS) {
        out[key] = pseudonym === null ? await tx.run(`DELETE FROM ${table} WHERE device_id = $1`, [deviceId]) : await tx.run(`UPDATE ${table} SET device_id = $2 WHERE device_id = $1`, [deviceId, pseudonym]);
      }
      for (const [key, table] of DESCRIBING) out[key] = await tx.run(`DELETE FROM ${table} WHERE device_id = $1`, [deviceId]);
      out.alertNotifications = await tx.run(`DELETE FROM ${ALERT_NOTIFICATIONS}`, [deviceId]);
      out.alerts = await tx.run('DELETE FROM alerts WHERE device_id = $1', [deviceId]);
      out.claimTokens = await tx.run(`DELETE FROM ${UNUSED_CLAIM_TOKENS}`, [deviceId]);
      // Where it connected from (kept a week for the cloned-identity check): gone either way, not counted in the receipt.
      await tx.run('DELETE FROM session_takeovers WHERE device_id = $1', [deviceId]);
      await tx.run('UPDATE devices SET last_address = NULL WHERE id = $1', [deviceId]);
      // The posture it last reported (listening addresses and ports) describes the device: gone either way.
      await tx.run('DELETE FROM device_posture WHERE device_id = $1', [deviceId]);
      // The traces of its messages name it (spans carry the device id): gone either way.
      await tx.run('DELETE FROM message_traces WHERE device_id = $1', [deviceId]);
      let readings = 0;
      for (const l of await this.#letters(tx, deviceId)) {
        readings += l.mine;
        const batch = l.batch;
        const kept = (batch.readings ?? []).flatMap((r) => (r.deviceId !== deviceId ? [r] : pseudonym === null ? [] : [{ ...r, deviceId: pseudonym }]));
        if (kept.length === 0) await tx.run('DELETE FROM webhook_dead_letters WHERE id = $1', [l.id]);
        else await tx.run('UPDATE webhook_dead_letters SET body = $2, readings = $3 WHERE id = $1', [l.id, JSON.stringify({ ...batch, readings: kept }), kept.length]);
      }
      out.webhookDeadLetterReadings = readings;
      return out as unknown as Counts;
    });
  }

  /** Webhook dead letters holding readings of the device (a batch body names each reading's deviceId). */
  async #letters(tx: SqlExecutor, deviceId: string): Promise<{ id: string; batch: Batch; mine: number }[]> {
    const needle = `%${JSON.stringify(deviceId).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await tx.all<LetterRow>("SELECT id, body FROM webhook_dead_letters WHERE body LIKE $1 ESCAPE '\\'", [needle]);
    return rows.flatMap((r) => {
      const batch = JSON.parse(r.body) as Batch;
      const mine = (batch.readings ?? []).filter((x) => x.deviceId === deviceId).length;
      return mine > 0 ? [{ id: r.id, batch, mine }] : [];
    });
  }
}

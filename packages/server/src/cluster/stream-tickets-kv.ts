import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { STREAM_TICKET_TTL_MS, type TicketBook, checkTicketRoute, newTicket, ticketUnknown } from '../access/index.js';
import { type NatsLink, whileElecting } from './nats.js';

export const TICKETS_BUCKET = 'bulwark_stream_tickets';

/**
 * Stream tickets every node can redeem, in a NATS KV bucket whose entries expire with the
 * ticket. NATS never holds a usable credential: the key is the ticket's SHA-256, the value
 * the access token sealed (AES-256-GCM) with a key derived from the ticket itself. A ticket is
 * spent by deleting its entry on the revision read, so two nodes cannot both redeem it.
 */
export class KvStreamTickets implements TicketBook {
  private constructor(
    private readonly kv: KV,
    private readonly ttlMs: number,
  ) {}

  static async open(link: NatsLink, ttlMs = STREAM_TICKET_TTL_MS, replicas = 1): Promise<KvStreamTickets> {
    const kv = await whileElecting(() => new Kvm(jetstream(link.nc)).create(TICKETS_BUCKET, { history: 1, ttl: ttlMs, replicas }));
    return new KvStreamTickets(kv, ttlMs);
  }

  async issue(accessToken: string): Promise<{ ticket: string; expiresAt: number }> {
    const ticket = newTicket();
    const expiresAt = Date.now() + this.ttlMs;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', sealKey(ticket), iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify({ token: accessToken, expiresAt })), cipher.final()]);
    await this.kv.put(keyOf(ticket), Buffer.concat([iv, cipher.getAuthTag(), sealed]));
    return { ticket, expiresAt };
  }

  async redeem(ticket: string, route: string | undefined): Promise<string> {
    const key = keyOf(ticket);
    const entry = await this.kv.get(key).catch(() => null);
    // Spent exactly once, whatever happens next: only the node whose delete lands on the revision it read may use it.
    const spent =
      entry?.operation === 'PUT' &&
      (await this.kv.delete(key, { previousSeq: entry.revision }).then(
        () => true,
        () => false,
      ));
    checkTicketRoute(route);
    if (!entry || !spent) throw ticketUnknown();
    let opened: { token: string; expiresAt: number };
    try {
      const raw = Buffer.from(entry.value);
      const decipher = createDecipheriv('aes-256-gcm', sealKey(ticket), raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      opened = JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as { token: string; expiresAt: number };
    } catch {
      throw ticketUnknown();
    }
    if (opened.expiresAt <= Date.now()) throw ticketUnknown();
    return opened.token;
  }
}

const keyOf = (ticket: string) => createHash('sha256').update(ticket).digest('base64url');
const sealKey = (ticket: string) => Buffer.from(hkdfSync('sha256', ticket, 'bulwark stream ticket', 'seal', 32));

import type { MqttClient } from 'mqtt';
import { type RotationRequest, RotationResult, parseMessage } from '@bulwark/protocol';
import { type Identity, commitRenewal, prepareRenewal, renewAt } from './identity.js';
import type { AgentLogger } from './logs.js';

/**
 * Certificate renewal over `devices/{id}/certs/rotate`: once `fraction` of the lifetime has
 * passed, make a new key, send its CSR (a RotationRequest), and on the RotationResult swap
 * key and certificate in and reconnect with them. The platform keeps the old certificate
 * valid until the new one is first used, so a lost answer is retried with the old one on the
 * next connection.
 */
export interface RenewalOptions {
  readonly dir: string;
  readonly deviceId: string;
  readonly fraction: number;
  readonly topic: string;
  readonly now: () => number;
  readonly log: AgentLogger;
  readonly onRenewed: (id: Identity) => void;
}

interface Waiter {
  resolve(r: { serial: string; notAfter: number }): void;
  reject(err: Error): void;
}

export class Renewal {
  readonly #o: RenewalOptions;
  #pending = false;
  #waiters: Waiter[] = [];

  constructor(o: RenewalOptions) {
    this.#o = o;
  }

  /** Starts a renewal when it is due and none is under way. */
  check(client: MqttClient, id: Identity): void {
    if (this.#pending || this.#o.now() < renewAt(id, this.#o.fraction)) return;
    this.#start(client, id);
  }

  /** Renews now, due or not (the platform asked: built-in command `certs.renew`); resolves with the new certificate once stored. */
  now(client: MqttClient, id: Identity): Promise<{ serial: string; notAfter: number }> {
    const done = new Promise<{ serial: string; notAfter: number }>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#pending) this.#start(client, id);
    return done;
  }

  #settle(outcome: { serial: string; notAfter: number } | Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (outcome instanceof Error) w.reject(outcome);
      else w.resolve(outcome);
    }
  }

  #start(client: MqttClient, id: Identity): void {
    this.#pending = true;
    prepareRenewal(this.#o.dir, this.#o.deviceId).then(
      (csr) => {
        // The key took a while: the connection may have closed meanwhile (agent stopped, or
        // reconnected with another client). The next connection asks again.
        if (client.disconnecting || !client.connected) {
          this.#pending = false;
          this.#settle(new Error('the connection closed before the renewal was sent'));
          return;
        }
        client.publish(this.#o.topic, JSON.stringify({ csr } satisfies RotationRequest), { qos: 1 }, (err) => {
          if (!err) return;
          this.#pending = false;
          this.#settle(new Error(`could not send the renewal: ${err.message}`));
        });
        this.#o.log.info('certificate renewal requested', { serial: id.serial });
      },
      (err: unknown) => {
        this.#pending = false;
        this.#o.log.error('could not prepare a certificate renewal', { err: String(err) });
        this.#settle(new Error(`could not prepare a certificate renewal: ${String(err)}`));
      },
    );
  }

  /** The RotationResult: the new certificate, or why not. */
  onResult(payload: Buffer): void {
    if (!this.#pending) return;
    this.#pending = false;
    const r = parseMessage(RotationResult, payload);
    if (!r) {
      this.#o.log.error('unreadable certificate renewal answer');
      this.#settle(new Error('unreadable certificate renewal answer'));
      return;
    }
    if ('error' in r) {
      this.#o.log.error('certificate renewal refused', { code: r.error.code, message: r.error.message });
      this.#settle(new Error(`renewal refused: ${r.error.code}: ${r.error.message}`));
      return;
    }
    try {
      const id = commitRenewal(this.#o.dir, r.certificate, r.caChain);
      this.#o.log.info('certificate renewed', { serial: id.serial, notAfter: id.notAfter });
      // Answered first: the reconnect with the new certificate comes after (a result lost in it is sent again when the platform repeats the command).
      this.#settle({ serial: id.serial, notAfter: id.notAfter });
      this.#o.onRenewed(id);
    } catch (err) {
      this.#o.log.error('could not store the renewed certificate', { err: String(err) });
      this.#settle(new Error(`could not store the renewed certificate: ${String(err)}`));
    }
  }
}

import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { Device } from '../registry/index.js';
import type { DataCounts, DataPolicy, DeviceDataRepository, Receipt, ReceiptKind, SignedReceipt } from './lifecycle.js';
import { type ReceiptSigner, receiptHash, saveReceipt } from './receipts.js';

/** What end of life needs of the other contexts. */
export interface EndOfLifeDeps {
  readonly data: DeviceDataRepository;
  readonly registry: {
    get(id: string): Promise<Device>;
    decommission(id: string): Promise<Device>;
    transfer(id: string, owner: string): Promise<Device>;
  };
  readonly identity: {
    /** Serials of the device's certificates that are not revoked. */
    liveSerials(deviceId: string): Promise<string[]>;
    revokeDevice(deviceId: string, reason: string): Promise<number>;
    claimToken(deviceId: string, by: string): Promise<{ token: string; expiresAt: number }>;
  };
  /** Ends the device's queued and dispatched job entries (but those of the job doing this, when `by` is one); returns how many. */
  readonly cancelJobs: (deviceId: string, reason: string, by: string) => Promise<number>;
  /** Ends the commands waiting for the device; returns how many. */
  readonly cancelCommands: (deviceId: string, reason: string) => Promise<number>;
  /** Cluster mode: purges the device's messages from the telemetry streams; returns how many (absent in embedded mode). */
  readonly purgeStreams?: (deviceId: string) => Promise<number>;
  /** Drops the log lines held in memory here (and tells the other nodes to); returns how many there were here. */
  readonly forgetLogs: (deviceId: string) => Promise<number>;
  /** Removes the device from every static group (a new owner's device in the old owner's groups would show it to them). */
  readonly leaveGroups: (deviceId: string) => Promise<number>;
  /** Checks a new owner: a principal id or `group:<id>` that exists (BULWARK_ERR_VALIDATION / NOT_FOUND otherwise). */
  readonly checkOwner: (owner: string) => Promise<void>;
  readonly audit: (action: string, actor: string, target: string, details: Record<string, unknown>) => Promise<void>;
  readonly signer: ReceiptSigner;
  /** Where receipts are written (`<dataDir>/receipts`). */
  readonly receiptsDir: string;
  readonly pseudonymKey: Buffer;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
}

export interface EndOfLifeResult {
  readonly device: Device;
  readonly receipt: SignedReceipt;
  /** The receipt as written on the node that did the work. */
  readonly receiptFile: string;
}

const NO_DATA: DataCounts = {
  telemetry: 0,
  rollups: 0,
  feed: 0,
  deadLetters: 0,
  health: 0,
  events: 0,
  twin: 0,
  commands: 0,
  alerts: 0,
  alertNotifications: 0,
  webhookDeadLetterReadings: 0,
  claimTokens: 0,
  streamMessages: 0,
  logs: 0,
};

/**
 * A device's end of life as one operation with a signed receipt: decommission (retire, revoke
 * every certificate, end sessions, cancel jobs and commands, apply the data policy), an erasure
 * request (the data policy alone), and a transfer to a new owner (resale: the previous owner's
 * data erased or pseudonymised, a new claim token, and a new certificate at the next enrolment).
 *
 * Each is resumable rather than one transaction: the step that stops the device (state,
 * revocation) comes first, the data policy runs in one store transaction, and running the
 * data step again (an erasure request) finishes an operation that stopped part-way.
 */
export class EndOfLifeService {
  constructor(private readonly d: EndOfLifeDeps) {}

  async decommission(deviceId: string, policy: DataPolicy, by: string): Promise<EndOfLifeResult> {
    const before = await this.d.registry.get(deviceId);
    if (before.state === 'decommissioned') {
      throw new PlatformError('BULWARK_ERR_LIFECYCLE', `device ${deviceId} is already decommissioned; to apply a data policy now, send an erasure request`, { details: { state: before.state } });
    }
    const serials = await this.d.identity.liveSerials(deviceId);
    await this.d.registry.decommission(deviceId);
    await this.d.identity.revokeDevice(deviceId, 'decommissioned');
    const cancelled = await this.#cancel(deviceId, 'device_decommissioned', by);
    const { data, pseudonym } = await this.#apply(deviceId, policy);
    return this.#finish('decommission', deviceId, by, policy, { revoked: serials, cancelled, data, pseudonym, transfer: null });
  }

  async erase(deviceId: string, policy: DataPolicy, by: string): Promise<EndOfLifeResult> {
    if (policy === 'keep') throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'an erasure request erases or pseudonymises: data=keep would do nothing');
    await this.d.registry.get(deviceId);
    const { data, pseudonym } = await this.#apply(deviceId, policy);
    return this.#finish('erasure', deviceId, by, policy, { revoked: [], cancelled: { jobEntries: 0, commands: 0 }, data, pseudonym, transfer: null });
  }

  /** Resale: the device starts again as manufactured for `owner`, with a fresh claim token (shown once, in the answer). */
  async transfer(deviceId: string, owner: string, policy: DataPolicy, by: string): Promise<EndOfLifeResult & { claimToken: { token: string; expiresAt: number } }> {
    if (policy === 'keep') throw new PlatformError('BULWARK_ERR_BAD_REQUEST', "keeping the previous owner's data would show it to the new owner: use data=erase or data=pseudonymise");
    const before = await this.d.registry.get(deviceId);
    if (before.owner === owner) throw new PlatformError('BULWARK_ERR_CONFLICT', `device ${deviceId} is already owned by ${owner}`, { details: { owner } });
    await this.d.checkOwner(owner);
    const serials = await this.d.identity.liveSerials(deviceId);
    if (serials.length > 0) await this.d.identity.revokeDevice(deviceId, 'transferred');
    const cancelled = await this.#cancel(deviceId, 'device_transferred', by);
    const { data, pseudonym } = await this.#apply(deviceId, policy);
    await this.d.leaveGroups(deviceId);
    // The owner changes last: until it does, running the transfer again finishes it.
    await this.d.registry.transfer(deviceId, owner);
    const claimToken = await this.d.identity.claimToken(deviceId, by);
    const result = await this.#finish('transfer', deviceId, by, policy, {
      revoked: serials,
      cancelled,
      data,
      pseudonym,
      transfer: { from: before.owner, to: owner, claimTokenExpiresAt: claimToken.expiresAt },
    });
    return { ...result, claimToken };
  }

  async #cancel(deviceId: string, reason: string, by: string): Promise<Receipt['cancelled']> {
    return { jobEntries: await this.d.cancelJobs(deviceId, reason, by), commands: await this.d.cancelCommands(deviceId, reason) };
  }

  async #apply(deviceId: string, policy: DataPolicy): Promise<{ data: DataCounts; pseudonym: string | null }> {
    if (policy === 'keep') return { data: { ...NO_DATA, ...(await this.d.data.count(deviceId)) }, pseudonym: null };
    // One pseudonym per operation: not linkable to the device without the platform's key, and never colliding with an earlier one.
    const pseudonym =
      policy === 'pseudonymise'
        ? `anon-${createHmac('sha256', this.d.pseudonymKey)
            .update(`${deviceId}\n${this.d.ids.next('p')}`)
            .digest('hex')
            .slice(0, 24)}`
        : null;
    // The streams first: a reading still in them would otherwise be stored after the store's step.
    const streamMessages = (await this.d.purgeStreams?.(deviceId)) ?? 0;
    const rows = pseudonym === null ? await this.d.data.erase(deviceId) : await this.d.data.pseudonymise(deviceId, pseudonym);
    const logs = await this.d.forgetLogs(deviceId);
    return { data: { ...rows, streamMessages, logs }, pseudonym };
  }

  async #finish(kind: ReceiptKind, deviceId: string, by: string, policy: DataPolicy, what: Pick<Receipt, 'revoked' | 'cancelled' | 'data' | 'pseudonym' | 'transfer'>): Promise<EndOfLifeResult> {
    const receipt = this.d.signer.sign({ id: this.d.ids.next('rcpt'), kind, deviceId, at: this.d.clock.now(), by, policy, ...what });
    const receiptFile = saveReceipt(this.d.receiptsDir, receipt);
    // The audit chain keeps ids and a hash only: the receipt itself holds the counts.
    await this.d.audit(`device.${kind}.receipt`, by, deviceId, { receiptId: receipt.id, receiptSha256: receiptHash(receipt), policy, keyId: receipt.keyId });
    this.d.log.info({ deviceId, receiptId: receipt.id, kind, policy }, 'end-of-life receipt written');
    return { device: await this.d.registry.get(deviceId), receipt, receiptFile };
  }
}

export const receiptsDirOf = (dataDir: string): string => join(dataDir, 'receipts');

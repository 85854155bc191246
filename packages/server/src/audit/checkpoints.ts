import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock, Logger } from '@bulwark/core';
import type { AuditHead, AuditRepository } from './audit.js';

/**
 * A signed statement of the audit chain's head at a moment: "entry `seq` has hash `hash`". Kept
 * outside the database, it pins every entry up to `seq`: the hashes chain back to the first
 * entry, so a rewritten chain (edited and hashed again, head and all) no longer has this hash
 * at this seq, however consistent it is in itself.
 */
export interface AuditCheckpoint {
  readonly v: 1;
  readonly seq: number;
  readonly hash: string;
  /** When it was signed, ms since the epoch. */
  readonly at: number;
  /** The signing key's public half, raw Ed25519, base64url. */
  readonly publicKey: string;
  /** Ed25519 over `signedText(...)`, base64url. */
  readonly signature: string;
}

export interface CheckpointProblem {
  /** The checkpoint's seq, or null for one that is not a checkpoint at all. */
  readonly seq: number | null;
  readonly problem: 'bad_signature' | 'other_key' | 'hash_mismatch' | 'truncated' | 'malformed';
  readonly message: string;
}

export interface CheckpointReport {
  readonly checked: number;
  readonly ok: boolean;
  /** The highest seq a valid checkpoint pins (0 when none). */
  readonly pinnedSeq: number;
  readonly problems: CheckpointProblem[];
}

/** The vault secret holding the signing key (PKCS#8 DER). */
export const CHECKPOINT_KEY_SECRET = 'audit.checkpoint-key';

const signedText = (seq: number, hash: string, at: number) => Buffer.from(`bulwark-audit-checkpoint/v1\n${seq}\n${hash}\n${at}`, 'utf8');
const rawPublic = (key: KeyObject) => Buffer.from((key.export({ format: 'jwk' }) as { x: string }).x, 'base64url').toString('base64url');

export interface CheckpointKeys {
  /** The signing key, made and sealed in the vault on first use. */
  signing(): Promise<KeyObject>;
  /** The public half of the key in the vault, undefined when none was ever made. */
  verifying(): Promise<KeyObject | undefined>;
}

/** The checkpoint key kept in the vault (sealed with the master key like every secret). */
export function vaultCheckpointKeys(vault: { get(name: string): Promise<Buffer | undefined>; getOrCreate(name: string, make: () => Buffer): Promise<Buffer> }): CheckpointKeys {
  const load = (der: Buffer) => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return {
    signing: async () => load(await vault.getOrCreate(CHECKPOINT_KEY_SECRET, () => generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }))),
    verifying: async () => {
      const der = await vault.get(CHECKPOINT_KEY_SECRET);
      return der === undefined ? undefined : createPublicKey(load(der));
    },
  };
}

export function signCheckpoint(head: AuditHead, at: number, key: KeyObject): AuditCheckpoint {
  return { v: 1, seq: head.seq, hash: head.hash, at, publicKey: rawPublic(createPublicKey(key)), signature: sign(null, signedText(head.seq, head.hash, at), key).toString('base64url') };
}

function isCheckpoint(c: unknown): c is AuditCheckpoint {
  const o = c as Record<string, unknown> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    o.v === 1 &&
    Number.isSafeInteger(o.seq) &&
    (o.seq as number) >= 0 &&
    typeof o.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(o.hash) &&
    Number.isSafeInteger(o.at) &&
    typeof o.publicKey === 'string' &&
    typeof o.signature === 'string'
  );
}

/**
 * Checks checkpoints against the chain as stored now: each must be signed by the platform's
 * checkpoint key, and the entry at its seq must still exist with its hash. Does not walk the
 * chain itself (verifyChain does): together they show the chain unedited up to the highest
 * checkpoint.
 */
export async function checkCheckpoints(checkpoints: readonly unknown[], key: KeyObject | undefined, repo: Pick<AuditRepository, 'scan' | 'head'>): Promise<CheckpointReport> {
  const problems: CheckpointProblem[] = [];
  let pinnedSeq = 0;
  const head = await repo.head();
  const own = key === undefined ? undefined : rawPublic(key);
  for (const c of checkpoints) {
    if (!isCheckpoint(c)) {
      problems.push({ seq: null, problem: 'malformed', message: 'not a checkpoint (v, seq, hash, at, publicKey, signature)' });
      continue;
    }
    const fail = (problem: CheckpointProblem['problem'], message: string) => problems.push({ seq: c.seq, problem, message });
    if (key === undefined || c.publicKey !== own) {
      fail('other_key', `checkpoint ${c.seq} is signed by a key this platform does not hold`);
      continue;
    }
    let signed = false;
    try {
      signed = verify(null, signedText(c.seq, c.hash, c.at), key, Buffer.from(c.signature, 'base64url'));
    } catch {
      signed = false;
    }
    if (!signed) {
      fail('bad_signature', `checkpoint ${c.seq}: the signature does not verify (the checkpoint was altered)`);
      continue;
    }
    if (c.seq > head.seq) {
      fail('truncated', `checkpoint ${c.seq} names an entry past the head (${head.seq}): entries were removed from the end`);
      continue;
    }
    if (c.seq === 0) continue;
    const [entry] = await repo.scan(c.seq - 1, 1);
    if (entry?.seq !== c.seq) {
      fail('truncated', `entry ${c.seq}, signed at ${new Date(c.at).toISOString()}, is no longer in the log`);
      continue;
    }
    if (entry.hash !== c.hash) {
      fail('hash_mismatch', `entry ${c.seq} no longer has the hash signed at ${new Date(c.at).toISOString()}: the chain up to it was rewritten`);
      continue;
    }
    pinnedSeq = Math.max(pinnedSeq, c.seq);
  }
  return { checked: checkpoints.length, ok: problems.length === 0, pinnedSeq, problems };
}

export interface CheckpointWriterDeps {
  readonly repo: Pick<AuditRepository, 'head' | 'scan'>;
  readonly keys: CheckpointKeys;
  readonly clock: Clock;
  readonly log: Logger;
  /** The file checkpoints are appended to, one JSON line each. */
  readonly file: string;
  readonly intervalMs: number;
  readonly written?: () => void;
  /** Told when the chain no longer holds the last checkpoint's entry: nothing is signed until an operator looks. */
  readonly refused?: () => void;
}

/** The checkpoints of a checkpoint file's text, newest last (a line that is not JSON is kept as text, to be reported malformed). */
export function parseCheckpointLines(text: string, newest = 1000): unknown[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-newest)
    .map((line) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        return line;
      }
    });
}

/**
 * Appends a signed checkpoint of the chain head to a file outside the database every
 * `intervalMs` when the head moved (and at start and stop): a leased singleton in a cluster,
 * so the checkpoints form one sequence when the file is on storage every node reaches. Before
 * signing it checks that the chain still holds the last checkpoint's entry (read from the file
 * at start): it never signs the head of a chain rewritten since, so the file keeps the
 * checkpoints that show the rewrite. A failure is logged and tried again next time.
 */
export class AuditCheckpointWriter {
  #timer: NodeJS.Timeout | undefined;
  /** The last checkpoint signed (or read from the file at start). */
  #last: { seq: number; hash: string } | undefined;
  #busy: Promise<void> | undefined;

  constructor(private readonly deps: CheckpointWriterDeps) {}

  async start(): Promise<void> {
    const newest = existsSync(this.deps.file) ? parseCheckpointLines(readFileSync(this.deps.file, 'utf8'), 1)[0] : undefined;
    if (isCheckpoint(newest)) this.#last = { seq: newest.seq, hash: newest.hash };
    await this.writeNow();
    this.#timer = setInterval(() => void this.writeNow(), this.deps.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    // A write under way may have read the head before the last entries: once more after it.
    await this.#busy;
    await this.writeNow();
  }

  /** Writes a checkpoint unless the head has not moved since the last one; never throws. */
  writeNow(): Promise<void> {
    this.#busy ??= this.#write().finally(() => {
      this.#busy = undefined;
    });
    return this.#busy;
  }

  async #write(): Promise<void> {
    try {
      const head = await this.deps.repo.head();
      const last = this.#last;
      if (head.seq === last?.seq && head.hash === last.hash) return;
      if (last !== undefined && last.seq > 0) {
        const [entry] = await this.deps.repo.scan(last.seq - 1, 1);
        if (entry?.seq !== last.seq || entry.hash !== last.hash) {
          this.deps.refused?.();
          this.deps.log.error({ seq: last.seq, file: this.deps.file }, 'audit: the chain no longer holds the entry of the last checkpoint (rewritten or cut short): no checkpoint is signed over it; run bulwark audit-log verify --checkpoint');
          return;
        }
      }
      const checkpoint = signCheckpoint(head, this.deps.clock.now(), await this.deps.keys.signing());
      mkdirSync(dirname(this.deps.file), { recursive: true });
      appendFileSync(this.deps.file, `${JSON.stringify(checkpoint)}\n`, { mode: 0o644 });
      this.#last = { seq: head.seq, hash: head.hash };
      this.deps.written?.();
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message, file: this.deps.file }, 'audit: could not write a checkpoint of the chain head; trying again at the next interval');
    }
  }
}

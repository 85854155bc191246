import { PlatformError } from '@bulwark/core';
import { type IdentifierKind, PSEUDONYM, PSEUDONYM_PREFIX, type PrivacySettings } from './privacy.js';
import type { Pseudonymiser } from './pseudonymiser.js';

/** What the registry holds for a device that a pseudonym may stand for. */
export interface Candidate {
  readonly id: string;
  readonly owner: string | null;
  readonly location: string | null;
}

export interface PrivacyDeps {
  readonly pseudonymiser: Pseudonymiser;
  readonly settings: PrivacySettings;
  /** The registry's devices, a page at a time, by id. */
  readonly candidates: (after: string | undefined, limit: number) => Promise<readonly Candidate[]>;
}

const PAGE = 1000;

/**
 * Computes and resolves pseudonyms for operators who must: a pseudonym is not reversible,
 * so resolving hashes every candidate in the registry (device ids, or the owners and
 * locations devices carry) until one matches. The caller's request is audited.
 */
export class PrivacyService {
  constructor(private readonly deps: PrivacyDeps) {}

  /** The places pseudonymised and the identifier kinds, as configured. */
  get settings(): PrivacySettings {
    return this.deps.settings;
  }

  /** Which pseudonymiser the exports, webhooks or logs use (undefined when that place shows real values). */
  namerFor(place: 'exports' | 'webhooks' | 'logs'): ((kind: IdentifierKind, value: string) => string | undefined) | undefined {
    const { places, kinds } = this.deps.settings;
    if (!places.has(place) || kinds.size === 0) return undefined;
    return (kind, value) => (kinds.has(kind) ? this.deps.pseudonymiser.pseudonym(kind, value) : undefined);
  }

  pseudonym(kind: IdentifierKind, value: string): string {
    return this.deps.pseudonymiser.pseudonym(kind, value);
  }

  /** The identifier a pseudonym stands for among the registry's devices; BULWARK_ERR_NOT_FOUND when none. */
  async resolve(pseudonym: string): Promise<{ kind: IdentifierKind; value: string }> {
    if (!PSEUDONYM.test(pseudonym)) {
      throw new PlatformError('BULWARK_ERR_VALIDATION', 'not a pseudonym: expected p:dev:, p:own: or p:loc: and 32 hex characters', { details: { reason: 'not_a_pseudonym' } });
    }
    const kind = (Object.keys(PSEUDONYM_PREFIX) as IdentifierKind[]).find((k) => pseudonym.startsWith(PSEUDONYM_PREFIX[k])) as IdentifierKind;
    for (let after: string | undefined; ;) {
      const page = await this.deps.candidates(after, PAGE);
      for (const d of page) {
        const value = kind === 'devices' ? d.id : kind === 'owners' ? d.owner : d.location;
        if (value !== null && this.deps.pseudonymiser.pseudonym(kind, value) === pseudonym) return { kind, value };
      }
      if (page.length < PAGE) break;
      after = page.at(-1)?.id;
    }
    throw new PlatformError('BULWARK_ERR_NOT_FOUND', 'no device in the registry has an identifier with this pseudonym');
  }
}

/**
 * Where identifiers are pseudonymised, and which: the operator lists the places
 * (`privacy.pseudonymise`) and the kinds of identifier (`privacy.pseudonymiseIdentifiers`).
 * Off by default: every place shows real identifiers until the operator names it.
 */
export const PLACES = ['exports', 'webhooks', 'logs'] as const;
export type Place = (typeof PLACES)[number];

export const IDENTIFIER_KINDS = ['devices', 'owners', 'locations'] as const;
export type IdentifierKind = (typeof IDENTIFIER_KINDS)[number];

/** The prefix of each kind's pseudonyms: a reader sees at once what the value stands for. */
export const PSEUDONYM_PREFIX: Readonly<Record<IdentifierKind, string>> = { devices: 'p:dev:', owners: 'p:own:', locations: 'p:loc:' };

/** A pseudonym of any kind: prefix and 32 hex characters (128 bits of the HMAC). */
export const PSEUDONYM = /^p:(dev|own|loc):[0-9a-f]{32}$/;

export interface PrivacySettings {
  readonly places: ReadonlySet<Place>;
  readonly kinds: ReadonlySet<IdentifierKind>;
}

export interface PrivacyConfig {
  /** Comma-separated places, or '' for none. */
  readonly pseudonymise: string;
  /** Comma-separated identifier kinds. */
  readonly pseudonymiseIdentifiers: string;
}

const words = (text: string): string[] =>
  text
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w !== '');

/** The problems of the two settings (unknown places or kinds), for the config loader to report with the rest. */
export function privacyProblems(places: unknown, kinds: unknown): string[] {
  const problems: string[] = [];
  const unknownPlaces = words(String(places ?? '')).filter((w) => !(PLACES as readonly string[]).includes(w));
  if (unknownPlaces.length > 0) problems.push(`privacy.pseudonymise: unknown place ${unknownPlaces.map((w) => JSON.stringify(w)).join(', ')} (places: ${PLACES.join(', ')})`);
  const listed = words(String(kinds ?? ''));
  const unknownKinds = listed.filter((w) => !(IDENTIFIER_KINDS as readonly string[]).includes(w));
  if (unknownKinds.length > 0) problems.push(`privacy.pseudonymiseIdentifiers: unknown identifier ${unknownKinds.map((w) => JSON.stringify(w)).join(', ')} (identifiers: ${IDENTIFIER_KINDS.join(', ')})`);
  else if (listed.length === 0 && words(String(places ?? '')).length > 0) problems.push(`privacy.pseudonymiseIdentifiers: empty while privacy.pseudonymise names places; name at least one of ${IDENTIFIER_KINDS.join(', ')}`);
  return problems;
}

/** The settings as sets (the config loader has checked them). */
export function privacySettings(c: PrivacyConfig): PrivacySettings {
  return {
    places: new Set(words(c.pseudonymise).filter((w): w is Place => (PLACES as readonly string[]).includes(w))),
    kinds: new Set(words(c.pseudonymiseIdentifiers).filter((w): w is IdentifierKind => (IDENTIFIER_KINDS as readonly string[]).includes(w))),
  };
}

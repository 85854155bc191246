import pino, { type DestinationStream, type Logger as PinoLogger, type LoggerOptions } from 'pino';
import { type Namer, rewriteIdentifiers } from './identifiers.js';
import { type IdentifierKind, PSEUDONYM_PREFIX, type PrivacySettings } from './privacy.js';
import type { Pseudonymiser } from './pseudonymiser.js';

/** What a payload-carrying field shows in a log line. */
export const REDACTED = '[redacted]';

/**
 * Fields that carry what a device sent (a reading's data, a raw payload or body, an envelope,
 * the value a validation problem quotes): never written to a log, whatever the settings, so
 * that a value a schema marks x-sensitive cannot reach one through a future log call either.
 */
const PAYLOAD_PATHS = ['payload', 'data', 'body', 'envelope', 'got', 'problems[*].got'];
export const REDACT_PATHS = [...PAYLOAD_PATHS, ...PAYLOAD_PATHS.map((p) => `*.${p}`)];

/** The platform's logger with its privacy rules, and the late step that gives it the pseudonym key. */
export interface PrivateLog {
  readonly logger: PinoLogger;
  /** From now on identifiers in log lines become pseudonyms under this key (before it: `p:dev:unavailable` and the like). */
  use(pseudonymiser: Pseudonymiser): void;
}

/**
 * Makes the server's logger. Payload fields are always redacted. With `logs` among the
 * pseudonymised places, every line is rewritten just before it is written (pino's
 * streamWrite hook): identifiers in fields, topics, request URLs, and the same values in the
 * message and error text. Until the vault has given the key (the first moments of a start),
 * identifiers show as `p:dev:unavailable`: a line never falls back to the real value.
 * A logger handed in (`given`, an embedding application's) keeps its own destination: it gets
 * the redaction, and the field rewrite on a copy of the plain objects and arrays of each call
 * (the caller's objects are never changed: a Fastify request logged is the live request).
 * Other objects (errors, requests) reach that logger's serializers as they are, unrewritten.
 */
export function privateLog(options: { level: string; settings: PrivacySettings; given?: PinoLogger; destination?: DestinationStream }): PrivateLog {
  const { settings } = options;
  let current: Pseudonymiser | undefined;
  const namer: Namer = (kind, value) => (settings.kinds.has(kind) ? (current?.pseudonym(kind, value) ?? unavailablePseudonym(kind)) : undefined);
  const pseudonymise = settings.places.has('logs') && settings.kinds.size > 0;
  const redact = { paths: REDACT_PATHS, censor: REDACTED };
  let logger: PinoLogger;
  if (options.given) {
    logger = options.given.child(
      {},
      {
        redact,
        ...(pseudonymise ? { formatters: { log: (obj: object) => rewriteIdentifiers(obj, namer) } } : {}),
      },
    );
  } else {
    const base: LoggerOptions = {
      level: options.level,
      base: { svc: 'bulwark' },
      redact,
      ...(pseudonymise ? { hooks: { streamWrite: (line: string) => rewriteLine(line, namer) } } : {}),
    };
    logger = options.destination ? pino(base, options.destination) : pino(base);
  }
  return { logger, use: (p) => void (current = p) };
}

const unavailablePseudonym = (kind: IdentifierKind): string => `${PSEUDONYM_PREFIX[kind]}unavailable`;

/** One written line with its identifiers replaced; a line that does not parse is withheld (fail closed). */
export function rewriteLine(line: string, namer: Namer): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return `${JSON.stringify({ level: 50, time: Date.now(), msg: 'a log line was withheld: it could not be pseudonymised' })}\n`;
  }
  return `${JSON.stringify(rewriteIdentifiers(parsed, namer))}\n`;
}

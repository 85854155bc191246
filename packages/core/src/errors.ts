/**
 * Typed platform errors with stable codes.
 *
 * Every code the platform can return is listed in ERROR_CODES with its category and a
 * one-line description; docs/reference/errors.md is generated from this table and a test
 * keeps the two in step. Transports map a category to their wire code (HTTP status,
 * MQTT reason, CoAP code) in one table each.
 */

export type ErrorCategory = 'validation' | 'unauthenticated' | 'forbidden' | 'not_found' | 'conflict' | 'payload_too_large' | 'unsupported_media_type' | 'rate_limited' | 'unavailable' | 'internal';

interface CodeSpec {
  readonly category: ErrorCategory;
  readonly description: string;
}

export const ERROR_CODES = {
  BULWARK_ERR_VALIDATION: { category: 'validation', description: 'The request does not match the schema of the route: a field is missing, has the wrong type, is out of range, or is not allowed.' },
  BULWARK_ERR_MALFORMED_JSON: { category: 'validation', description: 'The request body is not valid JSON.' },
  BULWARK_ERR_JSON_TOO_DEEP: { category: 'validation', description: 'The JSON body nests objects or arrays deeper than the API accepts (details.maxDepth); it is refused while it is parsed.' },
  BULWARK_ERR_BAD_REQUEST: { category: 'validation', description: 'The request is well-formed but cannot be processed as sent (for example an invalid combination of fields).' },
  BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE: { category: 'unsupported_media_type', description: 'The request body has a content type the route does not accept (use application/json).' },
  BULWARK_ERR_PAYLOAD_TOO_LARGE: { category: 'payload_too_large', description: 'The request body is larger than the configured limit (http.bodyLimitBytes).' },
  BULWARK_ERR_UNAUTHENTICATED: { category: 'unauthenticated', description: 'No credentials were sent. Send "Authorization: Bearer <access token>"; get a token from POST /api/v1/auth/token with an API key.' },
  BULWARK_ERR_INVALID_CREDENTIALS: { category: 'unauthenticated', description: 'The API key is unknown, revoked, expired or wrong, or its principal is disabled.' },
  BULWARK_ERR_TOKEN_INVALID: { category: 'unauthenticated', description: 'The access token is malformed, its signature does not verify, or the key that issued it was revoked.' },
  BULWARK_ERR_TOKEN_EXPIRED: { category: 'unauthenticated', description: 'The access token has expired; exchange the API key for a new one.' },
  BULWARK_ERR_AUTH_LOCKED: { category: 'rate_limited', description: 'Too many failed authentication attempts from this address or for this key; wait for the time given in Retry-After.' },
  BULWARK_ERR_FORBIDDEN: { category: 'forbidden', description: 'The principal is authenticated but lacks the scope the route requires, or the target of the call (a user, service account or key) holds scopes the caller lacks.' },
  BULWARK_ERR_LAST_ADMIN: {
    category: 'conflict',
    description:
      "The call would leave no enabled admin, or none with the whole fleet (the last enabled user with the admin role cannot be disabled, and the last such user with the whole fleet cannot be limited to device groups); create or enable another admin first, or use `bulwark users recover` on the server's machine.",
  },
  BULWARK_ERR_NOT_LOOPBACK: { category: 'forbidden', description: 'This endpoint answers unauthenticated requests on loopback only; from elsewhere send a token with the metrics:read scope.' },
  BULWARK_ERR_RATE_LIMITED: { category: 'rate_limited', description: 'The per-principal or per-address request rate limit was exceeded, or too many key exchanges of one key or address were under way at once; retry after the time given in Retry-After.' },
  BULWARK_ERR_NOT_FOUND: { category: 'not_found', description: 'The route or the named resource does not exist.' },
  BULWARK_ERR_CONFLICT: { category: 'conflict', description: 'The resource already exists or is in a state that does not allow the operation.' },
  BULWARK_ERR_CONFIG_INVALID: { category: 'validation', description: 'One or more configuration settings are invalid; every bad setting is listed in the message.' },
  BULWARK_ERR_MASTER_KEY_INVALID: {
    category: 'internal',
    description:
      'The master key is missing or malformed, or a stored data key is wrapped by a master key this node does not hold (the message names its id; counted in bulwark_master_key_missing_total): give the node that key as BULWARK_MASTER_KEY or BULWARK_MASTER_KEY_NEXT.',
  },
  BULWARK_ERR_HSM_UNAVAILABLE: {
    category: 'internal',
    description: 'The PKCS#11 token configured in hsm.* cannot be used: its module does not load, no token has the label hsm.tokenLabel, or the PIN (BULWARK_HSM_PIN) is refused. The node does not start: its keys are in that token.',
  },
  BULWARK_ERR_MASTER_KEY_EXTERNAL: {
    category: 'conflict',
    description: 'The master key was supplied through BULWARK_MASTER_KEY, so the platform cannot replace it; give every node the new key as BULWARK_MASTER_KEY_NEXT and rotate again, or rotate it offline (see docs/guides/operations.md).',
  },
  BULWARK_ERR_MASTER_KEY_NOT_HELD: {
    category: 'conflict',
    description: 'A master-key rotation was refused because a live node of the cluster does not hold the key it would wrap under (the message lists the nodes): give every node the new key as BULWARK_MASTER_KEY_NEXT first (see docs/guides/cluster.md).',
  },
  BULWARK_ERR_SECRET_CORRUPT: { category: 'internal', description: 'A stored secret failed authenticated decryption: it was altered, or it was sealed under a different data key.' },
  BULWARK_ERR_STORE_UNAVAILABLE: { category: 'unavailable', description: 'The store (SQLite file or PostgreSQL) cannot be reached or rejected the operation.' },
  BULWARK_ERR_BUS_UNAVAILABLE: { category: 'unavailable', description: 'NATS (cluster mode) cannot be reached: at start the node exits 1; at run time /readyz fails and new device sessions are refused until it is back.' },
  BULWARK_ERR_COUNTERS_UNAVAILABLE: { category: 'unavailable', description: 'Redis (cluster mode counters) cannot be reached at start; at run time each node counts on its own until it is back.' },
  BULWARK_ERR_CSR_INVALID: { category: 'validation', description: 'The certificate signing request is malformed, its signature does not verify, or its key is not ECDSA P-256.' },
  BULWARK_ERR_DEVICE_ID_INVALID: { category: 'validation', description: 'A device id must be 1-128 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit; MQTT separators and wildcards (/, +, #), NUL and "$" are refused.' },
  BULWARK_ERR_CLAIM_TOKEN_INVALID: { category: 'unauthenticated', description: 'The claim token is unknown, already used, expired, or not valid for this device.' },
  BULWARK_ERR_LIFECYCLE: { category: 'conflict', description: 'The device lifecycle does not allow this transition (for example resuming a decommissioned device).' },
  BULWARK_ERR_DEVICE_NOT_ALLOWED: { category: 'forbidden', description: 'The device may not do this: it is suspended, decommissioned or revoked, or the topic is outside its own tree.' },
  BULWARK_ERR_SCHEMA_INVALID: { category: 'validation', description: 'The telemetry schema is not acceptable: bad $id (name@version), not an object schema, a numeric field without x-unit, an unknown keyword, a remote $ref, or it does not compile.' },
  BULWARK_ERR_SCHEMA_INCOMPATIBLE: {
    category: 'conflict',
    description: 'The new schema version would break devices or readers of the previous one (a field changed type or unit, a required field was removed, or a new field became required); publish it under a new name.',
  },
  BULWARK_ERR_DEVICE_OFFLINE: { category: 'conflict', description: 'The device is not connected and the request asked not to wait for it (ifOffline: "refuse").' },
  BULWARK_ERR_VERSION_CONFLICT: { category: 'conflict', description: 'The desired configuration changed since the version the caller named in ifVersion; read it again and retry.' },
  BULWARK_ERR_DEVICE_MESSAGE_TOO_LARGE: { category: 'payload_too_large', description: 'A command or desired configuration is larger than the device contract allows (DEVICE_MESSAGE_LIMITS: 16 KiB as sent on the wire).' },
  BULWARK_ERR_FIRMWARE_REFUSED: {
    category: 'validation',
    description:
      'The firmware metadata or image was refused; details.reason names why (unsigned, untrusted_key, bad_signature, root_threshold_not_met, root_rotation_invalid, expired, rollback, wrong_hardware, image_too_long, image_hash_mismatch, mix_and_match, …, see docs/guides/firmware-updates.md). Every refusal is audited.',
  },
  BULWARK_ERR_FIRMWARE_TOO_LARGE: { category: 'payload_too_large', description: 'The firmware image is larger than ota.artifactMaxBytes.' },
  BULWARK_ERR_FIRMWARE_UNAVAILABLE: {
    category: 'unavailable',
    description:
      'Cluster mode: this node has no local copy of the firmware image and cannot make one, because the shared store holds no image for it or holds one that does not match its size and SHA-256 (never served; logged and counted in bulwark_firmware_cache_fetches_total). The device retries.',
  },
  BULWARK_ERR_OTA_NOT_CONFIGURED: { category: 'conflict', description: 'No firmware root key set is configured (ota.rootKeysFile): the platform cannot verify firmware, so it accepts none.' },
  BULWARK_ERR_ROLLOUT_STATE: { category: 'conflict', description: 'The rollout is in a state that does not allow this (for example resuming an aborted or completed rollout).' },
  BULWARK_ERR_JOB_STATE: { category: 'conflict', description: 'The job is in a state that does not allow this (for example cancelling a completed job, or resuming one that is not paused).' },
  BULWARK_ERR_WEBHOOK_URL_REFUSED: {
    category: 'validation',
    description:
      'The webhook URL is not acceptable: not a URL, not https:// (the operator may allow http:// with webhooks.allowHttp), or it carries a user or password; details.reason is malformed, not_https or credentials. Counted in bulwark_webhook_targets_refused_total.',
  },
  BULWARK_ERR_WEBHOOK_TARGET_REFUSED: {
    category: 'validation',
    description:
      'The webhook host does not resolve, or resolves to an address webhooks may not reach (loopback, private, link-local, shared CGNAT, unspecified, multicast or reserved ranges) unless the operator sets webhooks.allowPrivateTargets; details.reason names the range. Checked at creation and again at every delivery. Counted in bulwark_webhook_targets_refused_total.',
  },
  BULWARK_ERR_EXPORT_INVALID: {
    category: 'validation',
    description:
      'A telemetry export was asked for with a bad filter, time range or cursor; details.reason names which (filter_missing, filter_conflict, time_missing, time_invalid, range_empty, cursor_invalid, cursor_mismatch; see docs/guides/integrations.md).',
  },
  BULWARK_ERR_INTERNAL: { category: 'internal', description: 'An unexpected error; the log line with the same request id has the details.' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface PlatformErrorOptions {
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
  /** Seconds the caller should wait before retrying (rate limits, lock-outs). */
  readonly retryAfterSeconds?: number;
}

export class PlatformError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: PlatformErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlatformError';
    this.code = code;
    this.category = ERROR_CODES[code].category;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isPlatformError(value: unknown): value is PlatformError {
  return value instanceof PlatformError;
}

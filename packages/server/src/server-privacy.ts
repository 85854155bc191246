import type { ServerConfig } from './config/index.js';
import { CursorSeal, type PrivateLog, PrivacyService, Pseudonymiser, privacySettings, privateLog, rewriteIdentifiers } from './privacy/index.js';
import type { RegistryService } from './registry/index.js';
import type { SecretVault } from './secrets/index.js';
import type { ServerDeps } from './server-types.js';

/** The vault entry holding the pseudonym key: its own, so that telemetry `hash` values and identifier pseudonyms never share a key. */
export const PSEUDONYM_KEY = 'privacy.pseudonym-key';

/** The server's logger: payload fields always redacted, identifiers pseudonymised when `logs` is on (the key comes later, from wirePrivacy). */
export function serverLogger(config: ServerConfig, deps: ServerDeps): PrivateLog {
  return privateLog({
    level: config.log.level,
    settings: privacySettings(config.privacy),
    ...(deps.logger ? { given: deps.logger } : {}),
    ...(deps.logDestination ? { destination: deps.logDestination } : {}),
  });
}

export interface PrivacyWiring {
  readonly service: PrivacyService;
  /** For the exporter: device ids shown as pseudonyms, cursors sealed; empty when exports show real ids. */
  readonly exports: { deviceShown?: (id: string) => string; cursors?: CursorSeal };
  /** For webhook deliveries and alert notifications; empty when they carry real ids. */
  readonly webhooks: { rewriteBody?: (body: string) => string };
}

/** Loads (or makes) the pseudonym key, hands it to the logger, and builds what exports, webhooks and the API use. */
export async function wirePrivacy(config: ServerConfig, deps: { vault: SecretVault; registry: RegistryService; log: PrivateLog }): Promise<PrivacyWiring> {
  const key = await deps.vault.getOrCreate(PSEUDONYM_KEY, () => globalThis.crypto.getRandomValues(Buffer.alloc(32)));
  const pseudonymiser = new Pseudonymiser(key);
  deps.log.use(pseudonymiser);
  const service = new PrivacyService({
    pseudonymiser,
    settings: privacySettings(config.privacy),
    candidates: async (after, limit) => (await deps.registry.list({ limit, ...(after !== undefined ? { after } : {}) })).map((d) => ({ id: d.id, owner: d.owner, location: d.location })),
  });
  const exportsNamer = service.namerFor('exports');
  const deviceShown = exportsNamer ? (id: string) => exportsNamer('devices', id) ?? id : undefined;
  const webhooksNamer = service.namerFor('webhooks');
  return {
    service,
    exports: deviceShown && service.settings.kinds.has('devices') ? { deviceShown, cursors: new CursorSeal(key) } : {},
    webhooks: webhooksNamer ? { rewriteBody: (body) => JSON.stringify(rewriteIdentifiers(JSON.parse(body) as unknown, webhooksNamer)) } : {},
  };
}

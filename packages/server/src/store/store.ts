import { join } from 'node:path';
import { type Clock, PlatformError } from '@bulwark/core';
import type { ApiKeyRepository, PrincipalRepository } from '../access/index.js';
import type { ApplicationRepository } from '../applications/index.js';
import type { AuditRepository } from '../audit/index.js';
import type { IdentityRepository } from '../identity/index.js';
import type { DeviceRepository, GroupRepository } from '../registry/index.js';
import type { JobRepository } from '../jobs/index.js';
import type { DeviceDataRepository } from '../lifecycle/index.js';
import type { SchemaRepository } from '../schemas/index.js';
import type { TelemetryRepository, TelemetryExportSource, TelemetryFeed } from '../ingest/index.js';
import type { SecretRepository } from '../secrets/index.js';
import type { TwinRepository } from '../twin/index.js';
import type { CommandRepository } from '../diagnostics/index.js';
import type { EventRepository, HealthRepository } from '../health/index.js';
import type { FirmwareImageRepository, FirmwareRepository, RolloutRepository } from '../ota/index.js';
import type { WebhookRepository } from '../webhooks/index.js';
import type { AlertRepository } from '../alerts/index.js';
import type { ChecklistRepository } from '../checklist/index.js';
import type { TraceRepository } from '../tracing/index.js';
import { migrate } from './migrate.js';
import { PostgresClient } from './postgres/postgres-client.js';
import type { SqlClient, SqlEngine } from './sql-client.js';
import { SqliteClient } from './sqlite/sqlite-client.js';
import { SqlAuditRepository } from './sql/audit.js';
import { SqlApiKeyRepository, SqlPrincipalRepository } from './sql/principals.js';
import { SqlSecretRepository } from './sql/secrets.js';
import { SqlDeviceRepository } from './sql/devices.js';
import { SqlGroupRepository } from './sql/groups.js';
import { SqlJobRepository } from './sql/jobs.js';
import { SqlDeviceDataRepository } from './sql/device-data.js';
import { SqlIdentityRepository } from './sql/identity.js';
import { SqlSchemaRepository } from './sql/schemas.js';
import { SqlTelemetryRepository } from './sql/telemetry.js';
import { SqlTelemetryExport } from './sql/telemetry-export.js';
import { SqlTwinRepository } from './sql/twins.js';
import { SqlCommandRepository } from './sql/commands.js';
import { SqlEventRepository, SqlHealthRepository } from './sql/health.js';
import { SqlFirmwareRepository } from './sql/firmware.js';
import { SqlFirmwareImageRepository } from './sql/firmware-images.js';
import { SqlRolloutRepository } from './sql/rollouts.js';
import { SqlApplicationRepository } from './sql/applications.js';
import { SqlTelemetryFeed } from './sql/telemetry-feed.js';
import { SqlWebhookRepository } from './sql/webhooks.js';
import { SqlAlertRepository } from './sql/alerts.js';
import { SqlChecklistRepository } from './sql/checklist.js';
import { SqlTraceRepository } from './sql/traces.js';

/** Every repository the platform uses, over one engine. */
export interface Store {
  readonly engine: SqlEngine;
  /** Human-readable location without credentials, for logs and /readyz. */
  readonly location: string;
  readonly principals: PrincipalRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly audit: AuditRepository;
  readonly secrets: SecretRepository;
  readonly devices: DeviceRepository;
  readonly identity: IdentityRepository;
  readonly schemas: SchemaRepository;
  readonly telemetry: TelemetryRepository;
  /** Pages of a telemetry export (read only). */
  readonly telemetryExport: TelemetryExportSource;
  readonly twins: TwinRepository;
  readonly commands: CommandRepository;
  readonly health: HealthRepository;
  readonly events: EventRepository;
  readonly firmware: FirmwareRepository;
  /** Firmware images every node reads: PostgreSQL only (embedded mode keeps them as files). */
  readonly firmwareImages?: FirmwareImageRepository;
  readonly rollouts: RolloutRepository;
  /** Stored readings as one ordered log (webhooks read it where there is no telemetry stream). */
  readonly telemetryFeed: TelemetryFeed;
  readonly webhooks: WebhookRepository;
  readonly alerts: AlertRepository;
  /** Read-only queries of `bulwark audit` over several contexts' tables. */
  readonly checklist: ChecklistRepository;
  readonly groups: GroupRepository;
  readonly jobs: JobRepository;
  /** Everything held about one device, for the data policy at the end of its life. */
  readonly deviceData: DeviceDataRepository;
  /** Applications reading the telemetry stream, and their NATS credentials. */
  readonly applications: ApplicationRepository;
  /** The spans each node recorded for traced messages. */
  readonly traces: TraceRepository;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreTarget {
  readonly engine: SqlEngine;
  /** SQLite file path, or PostgreSQL connection URL. */
  readonly location: string;
  readonly schema?: string;
}

/**
 * Reads a store setting: `sqlite` (the file bulwark.db in the data directory),
 * `sqlite:<path>`, or a `postgres://` / `postgresql://` URL.
 */
export function parseStoreUrl(url: string, dataDir: string): StoreTarget {
  if (url === 'sqlite') return { engine: 'sqlite', location: join(dataDir, 'bulwark.db') };
  if (url.startsWith('sqlite:')) return { engine: 'sqlite', location: url.slice('sqlite:'.length) };
  if (/^postgres(ql)?:\/\//.test(url)) return { engine: 'postgres', location: url };
  throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `store: "${url}" is not sqlite, sqlite:<path> or a postgres:// URL`);
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** Opens the engine, applies pending migrations and returns the repositories. */
export async function openStore(target: StoreTarget, clock: Clock): Promise<Store> {
  const db: SqlClient = target.engine === 'sqlite' ? await SqliteClient.open(target.location) : new PostgresClient(target.schema === undefined ? { url: target.location } : { url: target.location, schema: target.schema });
  try {
    await migrate(db, clock);
  } catch (err) {
    await db.close().catch(() => undefined);
    if (err instanceof PlatformError) throw err;
    throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot prepare the store: ${(err as Error).message}`, { cause: err });
  }
  return storeOn(db, target.engine === 'postgres' ? redactUrl(target.location) : target.location);
}

export function storeOn(db: SqlClient, location: string): Store {
  const telemetry = new SqlTelemetryRepository(db);
  return {
    engine: db.engine,
    location,
    principals: new SqlPrincipalRepository(db),
    apiKeys: new SqlApiKeyRepository(db),
    audit: new SqlAuditRepository(db),
    secrets: new SqlSecretRepository(db),
    devices: new SqlDeviceRepository(db),
    identity: new SqlIdentityRepository(db),
    schemas: new SqlSchemaRepository(db),
    telemetry,
    telemetryExport: new SqlTelemetryExport(db),
    twins: new SqlTwinRepository(db),
    commands: new SqlCommandRepository(db),
    health: new SqlHealthRepository(db),
    events: new SqlEventRepository(db),
    firmware: new SqlFirmwareRepository(db),
    ...(db.engine === 'postgres' ? { firmwareImages: new SqlFirmwareImageRepository(db) } : {}),
    rollouts: new SqlRolloutRepository(db),
    applications: new SqlApplicationRepository(db),
    telemetryFeed: new SqlTelemetryFeed(db),
    webhooks: new SqlWebhookRepository(db),
    alerts: new SqlAlertRepository(db),
    checklist: new SqlChecklistRepository(db),
    groups: new SqlGroupRepository(db),
    jobs: new SqlJobRepository(db),
    deviceData: new SqlDeviceDataRepository(db),
    traces: new SqlTraceRepository(db),
    ping: () => db.ping(),
    close: async () => {
      // What was stored and not yet folded into rollups (SQLite) is folded before the store closes.
      telemetry.stopFolding();
      await telemetry.foldRollups().catch(() => undefined);
      await db.close();
    },
  };
}

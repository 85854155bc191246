import { resolve } from 'node:path';
import type { Clock } from '@bulwark/core';
import type { AuditService } from '../audit/index.js';
import type { ServerConfig } from '../config/index.js';
import { type DeviceAuthority, ROOT_CA_ID } from '../identity/index.js';
import type { Store } from '../store/index.js';
import { ChecklistService } from './service.js';

/** The checklist over this node's store, settings, audit log and CAs. */
export function wireChecklist(o: { store: Store; config: ServerConfig; audit: AuditService; authority: DeviceAuthority; clock: Clock; checkpointFile: string }): ChecklistService {
  const { store, config } = o;
  return new ChecklistService({
    repo: store.checklist,
    clock: o.clock,
    schemas: async () => {
      const newest = new Map<string, { name: string; version: number; document: Readonly<Record<string, unknown>> }>();
      for (const s of await store.schemas.list()) {
        if ((newest.get(s.name)?.version ?? 0) < s.version) newest.set(s.name, { name: s.name, version: s.version, document: s.document });
      }
      return [...newest.values()];
    },
    verifyAudit: (checkpoints) => o.audit.verify(checkpoints),
    caIds: () => [ROOT_CA_ID, ...o.authority.trusted.map((c) => c.id)],
    config: {
      http: config.http,
      coap: config.coap,
      minSecurityVersion: config.ota.minSecurityVersion,
      crlValidityMs: config.identity.crlValidityMs,
      rawRetentionDays: config.telemetry.rawRetentionDays,
      retentionIntervalMs: config.telemetry.retentionIntervalMs,
      checkpointFile: config.audit.checkpointIntervalMs > 0 ? o.checkpointFile : undefined,
      dataDir: resolve(config.dataDir),
      deviceCertValidityDays: config.identity.deviceCertValidityDays,
    },
  });
}

import { readFileSync } from 'node:fs';
import { PlatformError } from '@bulwark/core';
import type { Logger as PinoLogger } from 'pino';
import { readNatsCreds } from './applications/index.js';
import type { ClusterMembership, EngineTls } from './cluster/index.js';
import type { ServerConfig } from './config/index.js';

/** What a node reads and checks to join a cluster: its engines' TLS files, its NATS login, and whether its firmware root keys match the other nodes'. */

/** The firmware root key set is a file on each node: say so when this node's differs from the others'. */
export async function warnOnOtherRootKeys(cluster: ClusterMembership, self: string, mine: string, log: PinoLogger): Promise<void> {
  const others = (await cluster.nodes().catch(() => [])).filter((n) => n.alive && n.id !== self && n.firmwareRootId !== undefined && n.firmwareRootId !== mine);
  if (others.length === 0) return;
  log.warn({ firmwareRootId: mine, others: others.map((n) => ({ node: n.id, firmwareRootId: n.firmwareRootId })) }, "this node's firmware root key set (ota.rootKeysFile) differs from other nodes': give every node the same file");
}

/** The `.creds` a node logs in to NATS with (operator mode), as ClusterMembership takes it. */
export function natsLogin(c: ServerConfig['cluster']): { natsCreds?: string } {
  const creds = readNatsCreds(c);
  return creds === undefined ? {} : { natsCreds: creds };
}

/** The PEM files of cluster.tls*, read once at start; undefined when none is set. */
export function engineTls(c: ServerConfig['cluster']): EngineTls | undefined {
  const read = (key: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `${key}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const ca = read('cluster.tlsCaFile', c.tlsCaFile);
  const cert = read('cluster.tlsCertFile', c.tlsCertFile);
  const key = read('cluster.tlsKeyFile', c.tlsKeyFile);
  if (ca === undefined && cert === undefined) return undefined;
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
}

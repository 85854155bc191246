import type { Logger } from '@bulwark/core';

/** What /readyz looks at on this node; the cluster parts are absent in embedded mode. */
export interface ReadinessSources {
  readonly store: { readonly engine: string; ping(): Promise<void> };
  /** Master-key ids that wrap stored data keys and that this node does not hold. */
  missingMasterKeys(): Promise<string[]>;
  draining(): boolean;
  /** Cluster mode: whether NATS is connected. */
  readonly bus?: () => boolean;
  /** Cluster mode: readings acknowledged into the stream and not stored yet (undefined: unknown). */
  readonly writerLag?: () => number | undefined;
}

/**
 * The readiness check: not ready when the store does not answer, when stored data keys are
 * wrapped by a master key this node lacks, while draining, or (cluster mode) without NATS.
 * The store writers' lag is reported, never a reason to be unready (devices are still
 * acknowledged while the writers catch up). Details go to the log; the answer says only
 * what is down.
 */
export function readiness(sources: ReadinessSources, log: Logger): () => Promise<{ ok: boolean; checks: Record<string, string> }> {
  let missingKeysLogged = '';
  return async () => {
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      await sources.store.ping();
      checks.store = `ok (${sources.store.engine})`;
    } catch (err) {
      log.error({ err }, 'readiness: the store does not answer');
      checks.store = 'unavailable';
      ok = false;
    }
    const missingKeys = await sources.missingMasterKeys().catch(() => []);
    if (missingKeys.length > 0) {
      if (missingKeys.join() !== missingKeysLogged) log.error({ masterKeyIds: missingKeys }, 'readiness: stored data keys are wrapped by master keys this node does not hold');
      checks.secrets = 'master key missing';
      ok = false;
    }
    missingKeysLogged = missingKeys.join();
    if (sources.draining()) {
      // Out of the load balancer while its sessions move to the other nodes.
      checks.node = 'draining';
      ok = false;
    }
    if (sources.bus) {
      // Without NATS this node would act on stale state: not ready, and it takes no new sessions.
      const connected = sources.bus();
      checks.bus = connected ? 'ok (nats)' : 'unavailable';
      ok &&= connected;
    }
    if (sources.writerLag) {
      const lag = sources.writerLag();
      checks.streamWriterLag = lag === undefined ? 'unknown' : String(lag);
    }
    return { ok, checks };
  };
}

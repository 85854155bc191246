import { Gauge, type Registry } from 'prom-client';
import type { DeviceAuthority } from './authority.js';
import type { PlatformCrls } from './crl.js';
import { x509 } from './x509.js';

/**
 * The certificate authority's health as Prometheus sees it: when each CA certificate ends, and
 * when each CRL this node serves stops being valid (re-signing that keeps failing shows as a
 * nextUpdate coming close). Read at each scrape from what the node holds.
 */
export function caMetrics(registry: Registry, source: { authority: DeviceAuthority; crls: () => PlatformCrls }): void {
  new Gauge({
    name: 'bulwark_ca_not_after_seconds',
    help: 'End of validity (Unix time, seconds) of the device root CA and of each trusted issuing CA',
    labelNames: ['ca'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.set({ ca: 'root' }, source.authority.root.cert.notAfter.getTime() / 1000);
      for (const ca of source.authority.trusted) this.set({ ca: ca.id }, ca.pair.cert.notAfter.getTime() / 1000);
    },
  });
  new Gauge({
    name: 'bulwark_crl_next_update_seconds',
    help: "nextUpdate (Unix time, seconds) of each CRL this node serves: the root's and each trusted issuing CA's; past it, verifiers refuse the list",
    labelNames: ['ca'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const { root, byCa } = source.crls();
      // A handful of small lists, read at each scrape: nothing to keep in step with re-signing.
      for (const [ca, pem] of [['root', root] as const, ...byCa]) {
        if (pem !== '') this.set({ ca }, (new x509.X509Crl(pem).nextUpdate?.getTime() ?? 0) / 1000);
      }
    },
  });
}

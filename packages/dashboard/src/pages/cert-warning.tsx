import { CERT_WARN_DAYS, DAY_MS, certificatesHref, endsText, newestLive } from '../cert-text';
import type { Certificate } from '../types';
import { fmtTime } from '../ui';

/**
 * One line on the device page when the certificate the device connects with (its newest live
 * one) ends within CERT_WARN_DAYS days or has ended, with a link to the certificates page.
 * Read from the device's certificate list, which the page loads anyway.
 */
export function CertWarning({ certs }: { certs: readonly Certificate[] }) {
  const cert = newestLive(certs);
  if (!cert) return null;
  const msLeft = cert.notAfter - Date.now();
  if (msLeft > CERT_WARN_DAYS * DAY_MS) return null;
  return (
    <p className={`cert-warning ${msLeft <= 0 ? 'ended' : ''}`} role="status" data-testid="cert-warning">
      Its certificate {msLeft > 0 ? 'ends' : 'ended'} {fmtTime(cert.notAfter)} ({endsText(msLeft)}). <a href={certificatesHref(CERT_WARN_DAYS)}>Certificates ending within {CERT_WARN_DAYS} days</a>
    </p>
  );
}

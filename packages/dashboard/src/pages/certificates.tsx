import { useState } from 'react';
import { api } from '../api';
import { CERT_WARN_DAYS, CERT_WINDOWS, DAY_MS, certWindowOf, certificatesHref, endsText } from '../cert-text';
import { href } from '../router';
import type { ExpiringCertificate } from '../types';
import { Empty, ErrorBox, Stat, fmtTime, useLoad } from '../ui';
import { CertWeeks } from './cert-weeks';

/** As many as `bulwark certs expiring` prints by default; the API allows up to 10,000. */
const LIMIT = 1000;
const PAGE = 50;

/** A count, and whether it is whole: with a cut answer, only the buckets that end before the last row are. */
interface Count {
  readonly n: number;
  readonly whole: boolean;
}

function countUpTo(rows: readonly ExpiringCertificate[], cut: boolean, boundMs: number, from = -Infinity): Count {
  const last = rows[rows.length - 1];
  return { n: rows.filter((r) => r.msLeft > from && r.msLeft <= boundMs).length, whole: !cut || (last !== undefined && last.msLeft > boundMs) };
}

const shown = (c: Count) => `${c.n}${c.whole ? '' : '+'}`;

/**
 * Devices whose newest live certificate ends within the window (7, 30 or 90 days, in the
 * URL) or has ended, soonest first: a summary, the ends per week, and the devices 50 a page.
 * One request: the API does not page, so up to LIMIT rows are read and paged here. It reads at
 * least 30 days ahead so that the summary's "within 30 days" holds in the 7-day window too.
 */
export function Certificates({ params }: { params: URLSearchParams }) {
  const within = certWindowOf(params);
  const list = useLoad(
    async (signal) => {
      const rows = await api('GET', '/api/v1/certificates/expiring', { query: { days: Math.max(within, CERT_WARN_DAYS), limit: LIMIT + 1 }, signal });
      return { all: rows.slice(0, LIMIT), cut: rows.length > LIMIT };
    },
    [within],
  );
  // The page number belongs to one window: another window starts again at the first page.
  const [paging, setPaging] = useState({ within, page: 0 });
  const page = paging.within === within ? paging.page : 0;

  const all = list.data?.all ?? [];
  const cut = list.data?.cut ?? false;
  const rows = all.filter((r) => r.msLeft <= within * DAY_MS);
  const pageRows = rows.slice(page * PAGE, (page + 1) * PAGE);
  const first = all[0];
  // The server's now, from its answer: notAfter less the time left.
  const at = first ? first.notAfter - first.msLeft : Date.now();
  const ended = countUpTo(all, cut, 0);
  const week = countUpTo(all, cut, 7 * DAY_MS, 0);
  const month = countUpTo(all, cut, 30 * DAY_MS, 0);
  const inWindow = countUpTo(all, cut, within * DAY_MS, 0);

  return (
    <section>
      <h2>Certificates</h2>
      <p className="muted">Devices whose newest live certificate ends within the window, or has ended, soonest first (decommissioned devices left out).</p>
      <nav className="tabs" data-testid="cert-windows">
        {CERT_WINDOWS.map((w) => (
          <a key={w} href={certificatesHref(w)} className={w === within ? 'active' : ''} data-testid={`window-${w}`}>
            {w} days
          </a>
        ))}
      </nav>
      <ErrorBox error={list.error} />
      {list.data ? (
        <div className="stats" data-testid="cert-summary">
          <Stat label="already expired" value={shown(ended)} testId="certs-expired" tone={ended.n ? 'bad' : undefined} />
          <Stat label="end within 7 days" value={shown(week)} testId="certs-7" tone={week.n ? 'warn' : undefined} />
          <Stat label="end within 30 days" value={shown(month)} testId="certs-30" />
          <Stat label={`end within the window (${within} days)`} value={shown(inWindow)} testId="certs-window" />
        </div>
      ) : null}
      {cut ? (
        <p className="muted" data-testid="certs-cut">
          The first {LIMIT} certificates are shown, soonest first; a count with + may be higher. <code>npx bulwark certs expiring --within {within}d --limit 10000</code> lists more.
        </p>
      ) : null}
      {list.data && rows.length === 0 ? (
        <Empty title={`No certificate ends within ${within} days, and none has ended.`}>
          <p>
            Device certificates last <code>identity.deviceCertValidityDays</code> (365 days by default). Agents renew theirs before the end; a job (<strong>renew certificates</strong>) renews a group's, <code>npx bulwark certs rotate</code> one device's, and
            the built-in <code>cert_expiry</code> alert rule warns ahead.
          </p>
        </Empty>
      ) : null}
      {rows.length > 0 ? (
        <>
          <h3>Ending per week</h3>
          <div className="chart">
            <CertWeeks rows={rows} windowDays={within} at={at} />
          </div>
          <table className="list" data-testid="certs-table">
            <thead>
              <tr>
                <th>device</th>
                <th>serial</th>
                <th>not after</th>
                <th>issuer</th>
              </tr>
            </thead>
            <tbody>
              {pageRows.map((c) => (
                <tr key={c.serial} data-testid={`cert-${c.deviceId}`}>
                  <td>
                    <a href={href('devices', c.deviceId)}>{c.deviceId}</a>
                  </td>
                  <td className="mono">{c.serial}</td>
                  <td>
                    {fmtTime(c.notAfter)}{' '}
                    <span className={`pill ${c.expired ? 'bad' : c.msLeft <= 7 * DAY_MS ? 'warning' : ''}`} data-testid="cert-ends">
                      {endsText(c.msLeft)}
                    </span>
                  </td>
                  <td className="mono">{c.caId}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {rows.length > PAGE ? (
            <div className="pager">
              <button type="button" disabled={page === 0} onClick={() => setPaging({ within, page: page - 1 })}>
                ← sooner
              </button>
              <span className="muted">
                page {page + 1} of {Math.ceil(rows.length / PAGE)}
              </span>
              <button type="button" disabled={(page + 1) * PAGE >= rows.length} onClick={() => setPaging({ within, page: page + 1 })}>
                later →
              </button>
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

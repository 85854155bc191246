import { DEVICE_STATE_LABELS } from '../job-text';
import type { Job, JobDeviceState } from '../types';

/** Left to right: the shares that ended, then those still waiting for an answer. */
const SHARES: readonly JobDeviceState[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'in_progress'];

/**
 * A job's progress: one bar with the share of its devices that succeeded, failed, timed out,
 * were cancelled and are in progress (an SVG, so no inline style is needed under the CSP),
 * then the finished count and the failures in words.
 */
export function JobBar({ job }: { job: Job }) {
  const { counts, progress } = job;
  const total = Math.max(1, job.deviceCount);
  const starts = SHARES.map((_, i) => SHARES.slice(0, i).reduce((sum, s) => sum + counts[s], 0));
  const words =
    SHARES.filter((s) => counts[s] > 0)
      .map((s) => `${counts[s]} ${DEVICE_STATE_LABELS[s]}`)
      .join(', ') || 'none dispatched yet';
  return (
    <span className="progress" title={`${words}${counts.queued ? `, ${counts.queued} queued` : ''}`} data-testid="job-progress">
      <svg className="shares" viewBox={`0 0 ${total} 1`} preserveAspectRatio="none" role="img" aria-label={words}>
        {SHARES.map((s, i) => (counts[s] > 0 ? <rect key={s} className={s} x={starts[i]} y={0} width={counts[s]} height={1} data-count={counts[s]} /> : null))}
      </svg>{' '}
      {progress.finished}/{progress.total} finished ({progress.percent}%)
      {counts.failed ? <span className="pill bad"> {counts.failed} failed</span> : null}
      {counts.timed_out ? <span className="pill timed_out"> {counts.timed_out} timed out</span> : null}
    </span>
  );
}

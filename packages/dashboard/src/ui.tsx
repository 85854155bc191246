import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from 'react';
import { ApiError } from './api';

export const fmtTime = (ms: number | null | undefined): string =>
  ms
    ? new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
    : '—';

export function ago(ms: number | null | undefined): string {
  if (!ms) return 'never';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  const e = error instanceof ApiError ? error : undefined;
  return (
    <div className="error" role="alert" data-code={e?.code}>
      <strong>{e ? e.code : 'Error'}</strong>: {error instanceof Error ? error.message : String(error)}
      {e?.requestId ? <span className="muted"> (request {e.requestId})</span> : null}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children}
    </div>
  );
}

/** Loads with `load` whenever `deps` change; `reload` runs it again. Leaving the page aborts a load under way. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(abort.signal).then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
      abort.abort();
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/**
 * A write action: a button that asks for confirmation (with the consequence spelled out),
 * then runs, and shows the API's error with its code if it fails. The question stays open
 * after a failure, so that it can be cancelled or asked again.
 */
export function ActionButton({ label, confirm, run, danger, testId, disabled }: { label: string; confirm?: string; run: () => Promise<unknown>; danger?: boolean; testId?: string; disabled?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const go = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await run();
      setAsking(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="action">
      {asking ? (
        <span className="confirm" role="dialog">
          <span>{confirm}</span>
          <button type="button" className={danger ? 'danger' : ''} disabled={busy} onClick={() => void go()} data-testid={testId ? `${testId}-confirm` : undefined}>
            Yes, {label.toLowerCase()}
          </button>
          <button type="button" onClick={() => setAsking(false)}>
            Cancel
          </button>
        </span>
      ) : (
        <button type="button" className={danger ? 'danger' : ''} disabled={busy || disabled === true} data-testid={testId} onClick={() => (confirm ? setAsking(true) : void go())}>
          {label}
        </button>
      )}
      <ErrorBox error={error} />
    </span>
  );
}

/**
 * A write action that asks why (job and rollout controls, alert silences): its button opens a
 * small form with the consequence, a reason (required, or optional: `run` then gets ''), any
 * further fields the caller renders (`children`, valid when `ready`); it runs with the trimmed
 * reason and shows the API's error with its code, leaving the form open to change or cancel.
 */
export function ReasonAction({
  label,
  submitLabel = label,
  consequence,
  required,
  placeholder,
  maxLength = 512,
  danger,
  testIds,
  cancelLabel = 'Cancel',
  ready = true,
  title,
  children,
  run,
}: {
  label: string;
  submitLabel?: string;
  consequence?: ReactNode;
  required: boolean;
  placeholder: string;
  maxLength?: number;
  danger?: boolean;
  testIds: { open: string; confirm: string; reason: string };
  cancelLabel?: string;
  ready?: boolean;
  title?: string;
  children?: ReactNode;
  run: (reason: string) => Promise<unknown>;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await run(reason.trim());
      setOpen(false);
      setReason('');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const tone = danger ? 'danger' : '';
  if (!open)
    return (
      <button type="button" className={tone} data-testid={testIds.open} onClick={() => setOpen(true)}>
        {label}
      </button>
    );
  return (
    <form className="confirm" role="dialog" title={title} onSubmit={(e) => void submit(e)}>
      {consequence ? <span>{consequence}</span> : null}
      <input aria-label="reason" data-testid={testIds.reason} placeholder={placeholder} value={reason} maxLength={maxLength} onChange={(e) => setReason(e.target.value)} />
      {children}
      <button type="submit" className={tone} disabled={busy || !ready || (required && reason.trim() === '')} data-testid={testIds.confirm}>
        {submitLabel}
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        {cancelLabel}
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

export function Stat({ label, value, testId, tone }: { label: string; value: ReactNode; testId?: string; tone?: 'good' | 'bad' | 'warn' | undefined }) {
  return (
    <div className={`stat ${tone ?? ''}`}>
      <div className="stat-value" data-testid={testId}>
        {value}
      </div>
      <div className="stat-label">{label}</div>
    </div>
  );
}

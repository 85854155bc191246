import { type FormEvent, useState } from 'react';
import { api } from '../api';
import type { RequestBody } from '../api-paths';
import type { Job, JobOperation } from '../types';
import { ErrorBox, useLoad } from '../ui';

type OperationType = JobOperation['type'];
const OPERATIONS: readonly (readonly [OperationType, string])[] = [
  ['twin-patch', 'twin patch'],
  ['command', 'command'],
  ['rotate-certificate', 'renew certificates'],
  ['suspend', 'suspend'],
  ['resume', 'resume'],
  ['decommission', 'decommission'],
];

/** A mistake in the form, caught before anything is sent. */
class FormProblem extends Error {}

function jsonObject(text: string, what: string, empty: 'allowed' | 'refused'): Record<string, unknown> {
  if (text.trim() === '') {
    if (empty === 'allowed') return {};
    throw new FormProblem(`${what}: give a JSON object, e.g. {"mode": "eco"}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FormProblem(`${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FormProblem(`${what} must be a JSON object ({…}), not ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

/** An optional number field: undefined when blank (the server's default applies). */
function optionalNumber(form: FormData, field: string, what: string, integer: boolean): number | undefined {
  const text = String(form.get(field) ?? '').trim();
  if (text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new FormProblem(`${what} must be a ${integer ? 'whole ' : ''}number above 0`);
  return n;
}

/** The body of POST /api/v1/jobs from the form. */
function jobBody(form: FormData, type: OperationType): RequestBody<'POST', '/api/v1/jobs'> {
  const text = (field: string) => String(form.get(field) ?? '').trim();
  let operation: JobOperation;
  if (type === 'twin-patch') operation = { type, patch: jsonObject(text('patch'), 'The twin patch', 'refused') };
  else if (type === 'command') {
    if (text('command') === '') throw new FormProblem("Give the command's name, e.g. diag.ping");
    operation = { type, name: text('command'), params: jsonObject(text('params'), "The command's parameters", 'allowed') };
  } else operation = { type };
  const ratePerSecond = optionalNumber(form, 'rate', 'The rate', false);
  const maxConcurrent = optionalNumber(form, 'concurrency', 'The concurrency', true);
  const timeoutS = optionalNumber(form, 'timeout', 'The device timeout', false);
  const pacing = { ...(ratePerSecond !== undefined ? { ratePerSecond } : {}), ...(maxConcurrent !== undefined ? { maxConcurrent } : {}) };
  return {
    name: text('name'),
    group: text('group'),
    operation,
    ...(Object.keys(pacing).length > 0 ? { pacing } : {}),
    ...(timeoutS !== undefined ? { deviceTimeoutMs: Math.round(timeoutS * 1000) } : {}),
  };
}

/**
 * Starts a job over a group. Nothing is sent until the fields make sense (JSON objects, numbers);
 * then the API's answer is shown as it comes, code and all. Decommission asks once more, with
 * the group's size, since it cannot be undone.
 */
export function NewJob({ onCreated, onClose }: { onCreated: (job: Job) => void; onClose: () => void }) {
  const [type, setType] = useState<OperationType>('twin-patch');
  const [confirming, setConfirming] = useState<{ group: string; devices: number } | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const groups = useLoad((signal) => api('GET', '/api/v1/groups', { query: { limit: 200 }, signal }), []);

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const body = jobBody(new FormData(e.currentTarget), type);
      if (type === 'decommission' && confirming?.group !== body.group) {
        const group = await api('GET', '/api/v1/groups/{id}', { params: { id: body.group } });
        setConfirming({ group: String(body.group), devices: group.deviceCount });
        return;
      }
      onCreated((await api('POST', '/api/v1/jobs', { body })) as Job);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card job-form" data-testid="job-form" onSubmit={(e) => void submit(e)} onChange={() => setConfirming(undefined)}>
      <h3>New job</h3>
      <div className="fields">
        <label>
          group <input name="group" required list="job-groups" placeholder="group id" data-testid="job-group-input" />
        </label>
        <datalist id="job-groups">
          {(groups.data ?? []).map((g) => (
            <option key={g.id} value={g.id}>
              {g.kind}
            </option>
          ))}
        </datalist>
        <label>
          name <input name="name" required maxLength={128} placeholder="what it is for" data-testid="job-name-input" />
        </label>
        <label>
          operation{' '}
          <select name="operation" value={type} data-testid="job-operation-input" onChange={(e) => setType(e.target.value as OperationType)}>
            {OPERATIONS.map(([t, label]) => (
              <option key={t} value={t}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {type === 'twin-patch' ? (
        <label className="block">
          twin patch (JSON, merged over each device's desired configuration; null removes a key)
          <textarea name="patch" rows={3} className="mono" placeholder='{"rateS": 60}' data-testid="job-patch-input" />
        </label>
      ) : null}
      {type === 'command' ? (
        <div className="fields">
          <label>
            command <input name="command" placeholder="diag.ping" maxLength={64} data-testid="job-command-input" />
          </label>
          <label className="block">
            parameters (JSON object, optional) <textarea name="params" rows={2} className="mono" placeholder="{}" data-testid="job-params-input" />
          </label>
        </div>
      ) : null}
      <div className="fields">
        <label>
          devices a second <input name="rate" type="number" min="0" step="any" className="short" placeholder="50" data-testid="job-rate-input" />
        </label>
        <label>
          at once, at most <input name="concurrency" type="number" min="1" step="1" className="short" placeholder="1000" data-testid="job-concurrency-input" />
        </label>
        <label>
          device timeout (s) <input name="timeout" type="number" min="1" step="any" className="short" placeholder="30" data-testid="job-timeout-input" />
        </label>
      </div>
      <p className="muted">Blank fields take the server's defaults (jobs.defaultRatePerSecond, 1000 at once, jobs.defaultDeviceTimeoutMs). The job acts on the group's members as they are now.</p>
      {confirming ? (
        <div className="confirm" role="dialog" data-testid="job-decommission-confirm">
          <span>
            Decommission all {confirming.devices} device{confirming.devices === 1 ? '' : 's'} of group {confirming.group}? Their certificates are revoked and they are retired for good; this cannot be undone.
          </span>
          <button type="submit" className="danger" disabled={busy} data-testid="job-create-confirm">
            Yes, decommission them
          </button>
          <button type="button" onClick={() => setConfirming(undefined)}>
            Back
          </button>
        </div>
      ) : (
        <div className="actions">
          <button type="submit" className={type === 'decommission' ? 'danger' : ''} disabled={busy} data-testid="job-create">
            Start job
          </button>
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      )}
      <ErrorBox error={error} />
    </form>
  );
}

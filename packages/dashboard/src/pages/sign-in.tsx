import { type FormEvent, useState } from 'react';
import { type Session, signIn } from '../api';
import { ErrorBox } from '../ui';

export function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(key));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <h1>Bulwark</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" placeholder="bwk.key_…" value={key} onChange={(e) => setKey(e.target.value)} />
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
      </form>
      <ErrorBox error={error} />
      <p className="muted">
        The first start of the server printed the admin API key once; <code>npx bulwark keys create</code> makes more. The key is exchanged for a 15-minute access token and kept in this tab only (sessionStorage): closing the tab signs you out.
      </p>
    </main>
  );
}

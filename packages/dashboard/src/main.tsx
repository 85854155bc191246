import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { type Session, can, onSignOut, resume, signOut } from './api';
import { href, useRoute } from './router';
import { Alerts } from './pages/alerts';
import { Audit } from './pages/audit';
import { Security } from './pages/security';
import { Certificates } from './pages/certificates';
import { DeadLetters } from './pages/dead-letters';
import { Device } from './pages/device';
import { Devices } from './pages/devices';
import { Jobs } from './pages/jobs';
import { Overview } from './pages/overview';
import { Rollouts } from './pages/rollouts';
import { Schemas } from './pages/schemas';
import { Users } from './pages/users';
import { SignIn } from './pages/sign-in';
import { Webhooks } from './pages/webhooks';
import './styles.css';

const NAV = [
  ['', 'Fleet'],
  ['devices', 'Devices'],
  ['certificates', 'Certificates'],
  ['alerts', 'Alerts'],
  ['schemas', 'Schemas'],
  ['dead-letters', 'Dead letters'],
  ['audit', 'Audit log'],
  ['security', 'Security'],
  ['rollouts', 'Rollouts'],
  ['jobs', 'Jobs'],
  ['webhooks', 'Webhooks'],
  ['users', 'Users'],
] as const;

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [resuming, setResuming] = useState(true);
  const route = useRoute();
  useEffect(() => {
    void resume().then((s) => {
      setSession(s);
      setResuming(false);
    });
    return onSignOut(() => setSession(undefined));
  }, []);
  if (resuming) return <p className="muted">Loading…</p>;
  if (!session) return <SignIn onSignedIn={setSession} />;
  const [page = '', id] = route.path;
  const readOnly = !session.scopes.includes('*') && !session.scopes.some((s) => s.endsWith(':write'));
  return (
    <>
      <header>
        <span className="brand">Bulwark</span>
        <nav>
          {NAV.map(([p, label]) => (
            <a key={p} href={href(...(p ? [p] : []))} className={page === p ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span className="who" data-testid="who">
          {session.principal.name} ({session.principal.role ?? 'service'}){readOnly ? ' · read-only' : ''}
        </span>
        <button type="button" onClick={signOut} data-testid="sign-out">
          Sign out
        </button>
      </header>
      <main data-page={page || 'fleet'}>
        {page === '' ? <Overview session={session} /> : null}
        {page === 'devices' && id ? <Device key={id} id={id} session={session} /> : null}
        {page === 'devices' && !id ? <Devices params={route.params} /> : null}
        {page === 'certificates' ? can(session, 'devices:read') ? <Certificates params={route.params} /> : <p className="muted">Your role cannot read devices (it needs the devices:read scope).</p> : null}
        {page === 'alerts' ? can(session, 'alerts:read') ? <Alerts params={route.params} session={session} /> : <p className="muted">Your role cannot read alerts (it needs the alerts:read scope).</p> : null}
        {page === 'schemas' ? <Schemas /> : null}
        {page === 'dead-letters' ? <DeadLetters params={route.params} session={session} /> : null}
        {page === 'audit' ? session.scopes.includes('*') || session.scopes.includes('audit:read') ? <Audit params={route.params} /> : <p className="muted">Your role cannot read the audit log (it needs the audit:read scope).</p> : null}
        {page === 'security' ? can(session, 'audit:read') ? <Security /> : <p className="muted">Your role cannot run the security checklist (it needs the audit:read scope).</p> : null}
        {page === 'webhooks' ? session.scopes.includes('*') || session.scopes.includes('webhooks:read') ? <Webhooks session={session} /> : <p className="muted">Your role cannot read webhooks (it needs the webhooks:read scope).</p> : null}
        {page === 'rollouts' ? (
          session.scopes.includes('*') || session.scopes.includes('rollouts:read') ? (
            <Rollouts key={id ?? ''} id={id} params={route.params} session={session} />
          ) : (
            <p className="muted">Your role cannot read rollouts (it needs the rollouts:read scope).</p>
          )
        ) : null}
        {page === 'users' ? can(session, 'users:read') ? <Users session={session} /> : <p className="muted">Your role cannot read users (it needs the users:read scope).</p> : null}
        {page === 'jobs' ? can(session, 'jobs:read') ? <Jobs key={id ?? ''} id={id} params={route.params} session={session} /> : <p className="muted">Your role cannot read jobs (it needs the jobs:read scope).</p> : null}
      </main>
    </>
  );
}

const root = document.getElementById('root');
if (root)
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );

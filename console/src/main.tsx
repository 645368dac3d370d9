/**
 * The Sibyl console: a single-page app served by the control tower under /console/ (control-tower/console.ts),
 * talking only to the tower's REST API with the signed-in token. Hash routes: #/models, #/models/NAME,
 * #/upload, #/playground[/MODEL/VERSION], #/shadows/NAME, #/cells[/CELL], #/rollouts, #/audit, #/tokens.
 */
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, session, type Whoami } from './api.ts';
import { AuditPage } from './pages/audit.tsx';
import { CellPage, CellsPage } from './pages/cells.tsx';
import { LoginPage } from './pages/login.tsx';
import { ModelPage } from './pages/model.tsx';
import { ModelsPage } from './pages/models.tsx';
import { PlaygroundPage } from './pages/playground.tsx';
import { RolloutsPage } from './pages/rollouts.tsx';
import { ShadowsPage } from './pages/shadows.tsx';
import { TokensPage } from './pages/tokens.tsx';
import { UploadPage } from './pages/upload.tsx';
import { Me } from './ui.tsx';

function useHash(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parts;
}

const NAV: { href: string; label: string; section: string; admin?: boolean }[] = [
  { href: '#/models', label: 'Models', section: 'models' },
  { href: '#/upload', label: 'Upload', section: 'upload' },
  { href: '#/playground', label: 'Rule playground', section: 'playground' },
  { href: '#/cells', label: 'Cells', section: 'cells' },
  { href: '#/rollouts', label: 'Rollouts', section: 'rollouts' },
  { href: '#/audit', label: 'Audit log', section: 'audit' },
  { href: '#/tokens', label: 'Tokens', section: 'tokens', admin: true },
];

function Route({ parts }: { parts: string[] }) {
  const [section = 'models', a, b] = parts;
  switch (section) {
    case 'models':
      return a ? <ModelPage name={a} /> : <ModelsPage />;
    case 'upload':
      return <UploadPage />;
    case 'playground':
      return <PlaygroundPage model={a} version={b} />;
    case 'shadows':
      return a ? <ShadowsPage name={a} /> : <ModelsPage />;
    case 'cells':
      return a ? <CellPage cell={a} /> : <CellsPage />;
    case 'rollouts':
      return <RolloutsPage />;
    case 'audit':
      return <AuditPage />;
    case 'tokens':
      return <TokensPage />;
    default:
      return <ModelsPage />;
  }
}

function App() {
  const parts = useHash();
  const [me, setMe] = useState<Whoami | null>(null);
  const [checking, setChecking] = useState(session.token !== null);
  useEffect(() => {
    if (!session.token) return;
    call<Whoami>('GET', '/v1/whoami').then(
      (w) => (setMe(w), setChecking(false)),
      () => (session.clear(), setChecking(false)),
    );
  }, []);
  if (checking) return <p class="loading">Signing in…</p>;
  if (!me) return <LoginPage onSignedIn={setMe} />;
  const section = parts[0] ?? 'models';
  const signOut = () => {
    session.clear();
    setMe(null);
  };
  return (
    <Me.Provider value={me}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/models">
          Sibyl
        </a>
        <nav aria-label="Sections">
          <ul>
            {NAV.filter((n) => !n.admin || me.role === 'admin').map((n) => (
              <li key={n.href}>
                <a href={n.href} aria-current={section === n.section || (section === 'shadows' && n.section === 'models') ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            {me.name} <span class={`role role-${me.role}`}>{me.role}</span>
          </span>
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Route parts={parts} />
      </main>
    </Me.Provider>
  );
}

render(<App />, document.getElementById('app')!);

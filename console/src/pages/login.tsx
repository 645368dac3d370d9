import { useState } from 'preact/hooks';
import { call, session, type Whoami } from '../api.ts';
import { ErrorBox } from '../ui.tsx';

/** Sign in with a tower token (the same tokens and roles as the REST API); it is kept for this tab only. */
export function LoginPage({ onSignedIn }: { onSignedIn: (w: Whoami) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const w = await call<Whoami>('GET', '/v1/whoami', undefined, token.trim());
      session.set(token.trim());
      onSignedIn(w);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login">
      <h1>Sibyl console</h1>
      <p>Sign in with a control tower token: a viewer reads, a publisher changes models, an admin manages tokens too.</p>
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <input id="token" type="password" autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} required />
        <button type="submit" disabled={busy || !token.trim()}>
          Sign in
        </button>
      </form>
      <ErrorBox error={error} />
      <p class="hint">
        <code>npm start</code> prints a development admin token; an admin makes others on the Tokens page.
      </p>
    </main>
  );
}

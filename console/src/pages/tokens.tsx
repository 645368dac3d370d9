import { useState } from 'preact/hooks';
import { call, enc, type Role, type TokenCreated, type TokenList } from '../api.ts';
import { ErrorBox, Me, Notice, Page, Table, time, useLoad } from '../ui.tsx';
import { useContext } from 'preact/hooks';

/** Tokens (admin): the live ones, a new one (its secret shown once), revoke. */
export function TokensPage() {
  const me = useContext(Me);
  const { data, error, reload } = useLoad(() => (me.role === 'admin' ? call<TokenList>('GET', '/v1/tokens') : Promise.resolve(undefined)), [me.role]);
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [created, setCreated] = useState<TokenCreated>();
  const [failure, setFailure] = useState<unknown>();
  if (me.role !== 'admin') {
    return (
      <Page title="Tokens">
        <p>Tokens are managed by admins.</p>
      </Page>
    );
  }
  const create = (e: Event) => {
    e.preventDefault();
    call<TokenCreated>('POST', '/v1/tokens', { name: name.trim(), role }).then((t) => (setCreated(t), setName(''), reload()), setFailure);
  };
  const revoke = (n: string) => call('DELETE', `/v1/tokens/${enc(n)}`).then(reload, setFailure);
  return (
    <Page title="Tokens">
      <ErrorBox error={error ?? failure} />
      <form class="inline" onSubmit={create}>
        <label for="token-name">Name</label>
        <input id="token-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        <label for="token-role">Role</label>
        <select id="token-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
          <option>viewer</option>
          <option>publisher</option>
          <option>admin</option>
        </select>
        <button type="submit">Create token</button>
      </form>
      {created ? (
        <Notice>
          Token <strong>{created.name}</strong> ({created.role}), shown this once: <code data-testid="new-token">{created.token}</code>
        </Notice>
      ) : null}
      <Table label="Tokens">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Created by</th>
            <th scope="col">Created</th>
            <th scope="col">
              <span class="sr-only">Revoke</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(data?.tokens ?? []).map((t) => (
            <tr key={t.name}>
              <td>{t.name}</td>
              <td>{t.role}</td>
              <td>{t.createdBy}</td>
              <td>{time(t.created)}</td>
              <td>
                {t.name === me.name ? (
                  <span class="muted">this session</span>
                ) : (
                  <button type="button" class="small" onClick={() => revoke(t.name)}>
                    Revoke {t.name}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
    </Page>
  );
}

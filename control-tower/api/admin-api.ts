/** Who the caller is (any token), the audit log (viewer) and API tokens (admin). */
import type { Hono } from 'hono';
import type { MetadataStore } from '../store/index.ts';
import { parseBody, reply, requireRole, type TowerEnv } from './http.ts';
import { AuditLog, CreateTokenBody, TokenCreated, TokenList, Whoami } from './schemas.ts';

export function mountAdminApi(app: Hono<TowerEnv>, store: MetadataStore): void {
  app.get('/v1/whoami', (c) => {
    const p = requireRole(c, 'viewer');
    return reply(c, Whoami, { name: p.name, role: p.role });
  });

  app.get('/v1/audit', async (c) => {
    requireRole(c, 'viewer');
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const q = (name: string) => c.req.query(name) || undefined;
    const filters = { actor: q('actor'), action: q('action'), model: q('model') };
    return reply(c, AuditLog, { entries: await store.auditLog({ limit: num(c.req.query('limit')), before: num(c.req.query('before')), ...filters }) });
  });

  app.get('/v1/tokens', async (c) => {
    requireRole(c, 'admin');
    return reply(c, TokenList, { tokens: await store.listTokens() });
  });

  app.post('/v1/tokens', async (c) => {
    const p = requireRole(c, 'admin');
    const body = await parseBody(c, CreateTokenBody);
    const created = await store.createToken({ name: body.name, role: body.role, actor: p.name });
    return reply(c, TokenCreated, created, 201);
  });

  app.delete('/v1/tokens/:name', async (c) => {
    const p = requireRole(c, 'admin');
    await store.revokeToken(c.req.param('name'), p.name);
    return c.body(null, 204);
  });
}

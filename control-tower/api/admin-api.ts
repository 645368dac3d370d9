/** The audit log (viewer) and API tokens (admin). */
import type { Hono } from 'hono';
import { SibylError } from '../../core/errors.ts';
import { ROLES, type MetadataStore, type Role } from '../store/index.ts';
import { jsonBody, requireRole, stringField, type TowerEnv } from './http.ts';

export function mountAdminApi(app: Hono<TowerEnv>, store: MetadataStore): void {
  app.get('/v1/audit', async (c) => {
    requireRole(c, 'viewer');
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    return c.json({ entries: await store.auditLog({ limit: num(c.req.query('limit')), before: num(c.req.query('before')) }) });
  });

  app.get('/v1/tokens', async (c) => {
    requireRole(c, 'admin');
    return c.json({ tokens: await store.listTokens() });
  });

  app.post('/v1/tokens', async (c) => {
    const p = requireRole(c, 'admin');
    const body = await jsonBody(c);
    const role = stringField(body, 'role');
    if (!ROLES.includes(role as Role)) throw new SibylError('INVALID_ARGUMENT', `role: one of ${ROLES.join(', ')}`);
    const created = await store.createToken({ name: stringField(body, 'name'), role: role as Role, actor: p.name });
    return c.json(created, 201);
  });

  app.delete('/v1/tokens/:name', async (c) => {
    const p = requireRole(c, 'admin');
    await store.revokeToken(c.req.param('name'), p.name);
    return c.body(null, 204);
  });
}

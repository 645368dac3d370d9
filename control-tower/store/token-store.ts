/** API tokens with roles: only the sha256 of a secret is stored; contracts on MetadataStore (metadata-types.ts). */
import { createHash, randomBytes } from 'node:crypto';
import { SibylError } from '../../core/errors.ts';
import { insertAudit } from './change-context.ts';
import { ROLES, type MetadataStore, type Principal, type Role, type TokenInfo } from './metadata-types.ts';
import type { Sql } from './sql.ts';

/** Secrets made here: "sibyl_" and 43 base64url characters (256 random bits). */
const TOKEN_PREFIX = 'sibyl_';

export function createTokenStore(sql: Sql): Pick<MetadataStore, 'createToken' | 'authenticate' | 'revokeToken' | 'listTokens'> {
  return {
    async createToken({ name, role, actor, token }) {
      const problems: string[] = [];
      if (typeof name !== 'string' || name.length < 1 || name.length > 100) problems.push('name must be 1-100 characters');
      if (!ROLES.includes(role)) problems.push(`role must be one of ${ROLES.join(', ')}`);
      if (token !== undefined && (typeof token !== 'string' || token.length < 16)) problems.push('a given token must be at least 16 characters');
      if (problems.length > 0) throw new SibylError('INVALID_ARGUMENT', problems.join('; '));
      const secret = token ?? TOKEN_PREFIX + randomBytes(32).toString('base64url');
      try {
        await sql.transaction(async (tx) => {
          await tx.query('INSERT INTO api_tokens (name, role, token_hash, created_by) VALUES ($1, $2, $3, $4)', [name, role, hashToken(secret), actor]);
          await insertAudit(tx, actor, 'token.create', name, { role });
        });
      } catch (err) {
        if ((err as { code?: unknown }).code === '23505') {
          throw new SibylError('ALREADY_EXISTS', `a token named ${name} (or with that secret) already exists`, { cause: err });
        }
        throw err;
      }
      return { name, role, token: secret };
    },

    async authenticate(token) {
      if (typeof token !== 'string' || token.length === 0) return undefined;
      const rows = await sql.query<Principal>('SELECT name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL', [hashToken(token)]);
      const row = rows[0];
      return row ? { name: row.name, role: row.role as Role } : undefined;
    },

    async revokeToken(name, actor) {
      await sql.transaction(async (tx) => {
        const rows = await tx.query('UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id', [name]);
        if (rows.length === 0) throw new SibylError('NOT_FOUND', `token ${name} not found`);
        await insertAudit(tx, actor, 'token.revoke', name, {});
      });
    },

    async listTokens() {
      const rows = await sql.query<{ name: string; role: Role; createdBy: string; created: unknown }>(
        `SELECT name, role, created_by AS "createdBy", created_at AS created FROM api_tokens WHERE revoked_at IS NULL ORDER BY name`,
      );
      return rows.map((r): TokenInfo => ({ ...r, created: r.created instanceof Date ? r.created : new Date(String(r.created)) }));
    },
  };
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

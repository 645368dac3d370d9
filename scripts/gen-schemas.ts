/**
 * Writes the contracts generated from the code's schemas (`npm run gen:schemas`): schemas/sibyl.schema.json, the
 * manifest's JSON Schema (runtimes/manifest-json-schema.ts). test/contracts/manifest-schema.test.ts fails when the
 * committed file differs from what this writes. The OpenAPI documents are served by the gateway and the tower at
 * GET /openapi.json, built from the handlers' schemas at run time.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MANIFEST_SCHEMA_FILE, manifestSchemaText } from '../runtimes/manifest-json-schema.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
writeFileSync(`${root}${MANIFEST_SCHEMA_FILE}`, manifestSchemaText());
process.stdout.write(`wrote ${MANIFEST_SCHEMA_FILE}\n`);

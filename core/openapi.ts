/**
 * OpenAPI 3.1 documents built from the schemas the handlers run: zod schemas (described by `z.toJSONSchema`, input
 * side: what goes over the wire, before defaults and after a codec's encode) and protobuf messages (described in
 * their ProtoJSON form, which is what `fromJson`/`toJson` read and write). The gateway's and the control tower's
 * REST apps each list their operations with the very schema objects their handlers use
 * (gateway/transport/openapi.ts, control-tower/api/openapi.ts); nothing here knows a route.
 *
 * A zod schema with `.meta({ id })` becomes a named component; a protobuf message is always one, named by its full
 * type name. A zod schema that stands for a ProtoJSON message inside a zod body is `protoJson(Desc)`.
 */
import { ScalarType, type DescEnum, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { z } from 'zod';

export type JsonSchema = { [key: string]: unknown };

/** A body: a zod schema, a protobuf message (ProtoJSON), or a JSON Schema given as is (binary and text bodies). */
export type BodySchema = z.ZodType | DescMessage | { readonly raw: JsonSchema };

export interface ParameterSpec {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly description?: string;
  /** Path parameters are always required. */
  readonly required?: boolean;
  readonly schema?: z.ZodType;
}

export interface ResponseSpec {
  readonly description: string;
  /** Media type to body; none for an empty answer. */
  readonly content?: Readonly<Record<string, BodySchema>>;
  readonly headers?: Readonly<Record<string, { readonly description: string; readonly schema?: z.ZodType }>>;
}

export interface OperationSpec {
  readonly method: 'get' | 'post' | 'put' | 'delete';
  /** The OpenAPI path template, e.g. `/v1/models/{model}:predict`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly parameters?: readonly ParameterSpec[];
  readonly requestBody?: { readonly required?: boolean; readonly description?: string; readonly content: Readonly<Record<string, BodySchema>> };
  /** By status code ('200', '4XX', 'default'). */
  readonly responses: Readonly<Record<string, ResponseSpec>>;
  /** Security requirement names (from the document's securitySchemes); omitted: none. */
  readonly security?: readonly string[];
}

export interface DocumentSpec {
  readonly title: string;
  readonly version: string;
  readonly description: string;
  readonly tags?: readonly { readonly name: string; readonly description: string }[];
  readonly securitySchemes?: Readonly<Record<string, JsonSchema>>;
  readonly operations: readonly OperationSpec[];
}

const protoOf = new WeakMap<z.ZodType, DescMessage>();

/**
 * A zod schema standing for the ProtoJSON form of `desc` inside a zod body: in the document a reference to the
 * message's component; at run time it accepts any JSON value (the handler encodes it with protobuf-es `toJson`).
 */
export function protoJson(desc: DescMessage): z.ZodType<unknown> {
  const s = z.custom<unknown>(() => true);
  protoOf.set(s, desc);
  return s;
}

const COMPONENT = '#/components/schemas/';

/** Builds the OpenAPI 3.1 document. Throws Error when two components share a name with different schemas. */
export function openApiDocument(spec: DocumentSpec): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const addComponent = (name: string, schema: JsonSchema) => {
    const had = components[name];
    if (had && JSON.stringify(had) !== JSON.stringify(schema)) throw new Error(`two schemas are named ${name}`);
    components[name] = schema;
  };
  const protoRef = (desc: DescMessage): JsonSchema => {
    addProtoMessage(desc, addComponent);
    return { $ref: `${COMPONENT}${desc.typeName}` };
  };

  const zodSchema = (schema: z.ZodType): JsonSchema => {
    const out = z.toJSONSchema(schema, {
      target: 'draft-2020-12',
      io: 'input',
      unrepresentable: 'any',
      override(ctx) {
        const desc = protoOf.get(ctx.zodSchema as unknown as z.ZodType);
        if (!desc) return;
        const js = ctx.jsonSchema as JsonSchema;
        for (const k of Object.keys(js)) delete js[k];
        Object.assign(js, protoRef(desc));
      },
    }) as JsonSchema;
    const { $schema: _, $defs, ...body } = out;
    for (const [name, def] of Object.entries(($defs ?? {}) as Record<string, JsonSchema>)) addComponent(name, rewriteRefs(def) as JsonSchema);
    return rewriteRefs(body) as JsonSchema;
  };

  const body = (b: BodySchema): JsonSchema => {
    if (isDescMessage(b)) return protoRef(b);
    if ('_zod' in b) return zodSchema(b);
    return (b as { readonly raw: JsonSchema }).raw;
  };
  const content = (c: Readonly<Record<string, BodySchema>>) => Object.fromEntries(Object.entries(c).map(([type, b]) => [type, { schema: body(b) }]));

  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of spec.operations) {
    const item = (paths[op.path] ??= {});
    if (item[op.method]) throw new Error(`${op.method.toUpperCase()} ${op.path} is listed twice`);
    item[op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(op.tags ? { tags: [...op.tags] } : {}),
      ...(op.parameters?.length
        ? {
            parameters: op.parameters.map((p) => ({
              name: p.name,
              in: p.in,
              ...(p.description ? { description: p.description } : {}),
              required: p.in === 'path' ? true : (p.required ?? false),
              schema: p.schema ? zodSchema(p.schema) : { type: 'string' },
            })),
          }
        : {}),
      ...(op.requestBody
        ? { requestBody: { required: op.requestBody.required ?? true, ...(op.requestBody.description ? { description: op.requestBody.description } : {}), content: content(op.requestBody.content) } }
        : {}),
      responses: Object.fromEntries(
        Object.entries(op.responses).map(([status, r]) => [
          status,
          {
            description: r.description,
            ...(r.headers
              ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, v]) => [h, { description: v.description, schema: v.schema ? zodSchema(v.schema) : { type: 'string' } }])) }
              : {}),
            ...(r.content ? { content: content(r.content) } : {}),
          },
        ]),
      ),
      ...(op.security ? { security: op.security.map((s) => ({ [s]: [] })) } : {}),
    };
  }
  return {
    openapi: '3.1.1',
    info: { title: spec.title, version: spec.version, description: spec.description },
    ...(spec.tags ? { tags: spec.tags.map((t) => ({ ...t })) } : {}),
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
      ...(spec.securitySchemes ? { securitySchemes: { ...spec.securitySchemes } } : {}),
    },
  };
}

function isDescMessage(v: unknown): v is DescMessage {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'message' && typeof (v as { typeName?: unknown }).typeName === 'string';
}

function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/') ? `${COMPONENT}${x.slice('#/$defs/'.length)}` : rewriteRefs(x)]),
  );
}

// --- ProtoJSON (https://protobuf.dev/programming-guides/json/) as JSON Schema --------------------------------------

const INT64 = { anyOf: [{ type: 'string', pattern: '^-?[0-9]+$' }, { type: 'integer' }], description: '64-bit integer: a decimal string (written), or a number (read)' };
const UINT64 = { anyOf: [{ type: 'string', pattern: '^[0-9]+$' }, { type: 'integer', minimum: 0 }], description: '64-bit unsigned integer: a decimal string (written), or a number (read)' };
const FLOATING = { anyOf: [{ type: 'number' }, { enum: ['NaN', 'Infinity', '-Infinity'] }] };

function scalarSchema(t: ScalarType): JsonSchema {
  switch (t) {
    case ScalarType.STRING:
      return { type: 'string' };
    case ScalarType.BOOL:
      return { type: 'boolean' };
    case ScalarType.BYTES:
      return { type: 'string', contentEncoding: 'base64' };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { ...FLOATING };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: 'integer', minimum: -2147483648, maximum: 2147483647 };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: 'integer', minimum: 0, maximum: 4294967295 };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { ...UINT64 };
    default:
      return { ...INT64 };
  }
}

/** The well-known types have their own JSON forms; the ones Sibyl's protos use, and the common others. */
const WELL_KNOWN: Readonly<Record<string, JsonSchema>> = {
  'google.protobuf.Value': { description: 'any JSON value' },
  'google.protobuf.Struct': { type: 'object' },
  'google.protobuf.ListValue': { type: 'array' },
  'google.protobuf.Timestamp': { type: 'string', format: 'date-time' },
  'google.protobuf.Duration': { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?s$' },
  'google.protobuf.Empty': { type: 'object', additionalProperties: false },
};

function enumSchema(e: DescEnum): JsonSchema {
  return { anyOf: [{ type: 'string', enum: e.values.map((v) => v.name) }, { type: 'integer' }] };
}

/** Adds `desc` (and every message it refers to) as components named by their full type names. */
function addProtoMessage(desc: DescMessage, add: (name: string, schema: JsonSchema) => void, seen = new Set<string>()): void {
  if (seen.has(desc.typeName)) return;
  seen.add(desc.typeName);
  const known = WELL_KNOWN[desc.typeName];
  if (known) {
    add(desc.typeName, { ...known });
    return;
  }
  const ref = (m: DescMessage): JsonSchema => {
    addProtoMessage(m, add, seen);
    return { $ref: `${COMPONENT}${m.typeName}` };
  };
  const single = (f: DescField): JsonSchema => {
    switch (f.fieldKind) {
      case 'scalar':
        return scalarSchema(f.scalar);
      case 'enum':
        return enumSchema(f.enum);
      case 'message':
        return ref(f.message);
      case 'list': {
        const item = f.listKind === 'scalar' ? scalarSchema(f.scalar) : f.listKind === 'enum' ? enumSchema(f.enum) : ref(f.message);
        return { type: 'array', items: item };
      }
      case 'map': {
        const value = f.mapKind === 'scalar' ? scalarSchema(f.scalar) : f.mapKind === 'enum' ? enumSchema(f.enum) : ref(f.message);
        return { type: 'object', additionalProperties: value };
      }
    }
  };
  const properties: Record<string, JsonSchema> = {};
  for (const f of desc.fields) properties[f.jsonName] = single(f);
  const oneofs = desc.oneofs.map((o) => o.fields.map((f) => f.jsonName));
  add(desc.typeName, {
    type: 'object',
    description: `ProtoJSON of ${desc.typeName}: every field optional (a field at its zero value is left out when written)${oneofs.length ? `; at most one of each group: ${oneofs.map((g) => g.join(' | ')).join('; ')}` : ''}.`,
    properties,
    additionalProperties: false,
  });
}

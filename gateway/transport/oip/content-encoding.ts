/**
 * Compressed OIP request bodies. Triton's HTTP client compresses the whole body (JSON header and binary tensors)
 * when asked to (`request_compression_algorithm="gzip"|"deflate"`) and sends `Content-Encoding`; its
 * `Inference-Header-Content-Length` then counts the JSON header of the decompressed body.
 */
import { promisify } from 'node:util';
import { gunzip, inflate, type ZlibOptions } from 'node:zlib';
import { SibylError } from '../../../core/errors.ts';

const gunzipAsync = promisify<Uint8Array, ZlibOptions, Buffer>(gunzip);
const inflateAsync = promisify<Uint8Array, ZlibOptions, Buffer>(inflate);

/**
 * The body with its `Content-Encoding` undone: none or `identity` as is, `gzip` (or `x-gzip`), `deflate` (zlib).
 * Decompression stops at `limitBytes` of output. Throws INVALID_ARGUMENT for another encoding, a corrupt body, or
 * a decompressed body over the limit.
 */
export async function decodeContent(body: Uint8Array, encoding: string | undefined, limitBytes: number): Promise<Uint8Array> {
  const name = (encoding ?? '').trim().toLowerCase();
  if (name === '' || name === 'identity') return body;
  const decode = name === 'gzip' || name === 'x-gzip' ? gunzipAsync : name === 'deflate' ? inflateAsync : undefined;
  if (!decode) throw new SibylError('INVALID_ARGUMENT', `content-encoding "${encoding}" is not supported (use gzip, deflate or none)`);
  try {
    return await decode(body, { maxOutputLength: limitBytes });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new SibylError('INVALID_ARGUMENT', `request body exceeds the limit of ${limitBytes} bytes (SIBYL_MAX_BODY_BYTES) once decompressed (${name})`, { cause: err, reason: 'BODY_TOO_LARGE' });
    }
    throw new SibylError('INVALID_ARGUMENT', `request body is not valid ${name} data`, { cause: err });
  }
}

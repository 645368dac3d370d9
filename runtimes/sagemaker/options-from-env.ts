/**
 * The sagemaker runtime's options from the process environment, read once at startup (never in the hot path).
 *
 * - Endpoint URL override: `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`, else `AWS_ENDPOINT_URL_SAGEMAKER`, else
 *   `AWS_ENDPOINT_URL` (the SDK's own names); unset: each model's regional AWS endpoint.
 * - Credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) when both are set; otherwise
 *   the SDK's default chain (profile, web identity, container or instance role), resolved on the first call.
 * The region is not here: it is each model's (`sagemaker.region` in its manifest).
 *
 * Throws SibylError INVALID_ARGUMENT when an endpoint URL is not an http(s) URL, or only one of the key pair is set.
 */
import { SibylError } from '../../core/errors.ts';
import type { SageMakerRuntimeOptions } from './sagemaker-runtime.ts';

export function sageMakerOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): SageMakerRuntimeOptions {
  const problems: string[] = [];
  let endpointUrl: string | undefined;
  for (const name of ['AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME', 'AWS_ENDPOINT_URL_SAGEMAKER', 'AWS_ENDPOINT_URL']) {
    const v = env[name]?.trim();
    if (!v) continue;
    if (!/^https?:\/\/[^\s/]+/.test(v) || !URL.canParse(v)) problems.push(`${name}: must be an http(s) URL`);
    else endpointUrl = v;
    break;
  }
  const id = env.AWS_ACCESS_KEY_ID?.trim();
  const secret = env.AWS_SECRET_ACCESS_KEY?.trim();
  if (Boolean(id) !== Boolean(secret)) problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together');
  if (problems.length) throw new SibylError('INVALID_ARGUMENT', `invalid SageMaker configuration: ${problems.join('; ')}`);
  const token = env.AWS_SESSION_TOKEN?.trim();
  return Object.freeze({
    endpointUrl,
    credentials: id && secret ? { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) } : undefined,
  });
}

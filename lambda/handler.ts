/**
 * The Lambda module (packaged as handler.mjs behind a two-line index.mjs; `npm run package:lambda`). Init runs at
 * import (top-level await, in Lambda's init phase): configuration, the gateway's parts, the desired state, every
 * model loaded and warmed. Two handlers:
 *
 * - `index.handler`: API Gateway HTTP API (2.0), function URLs (buffered), ALB and API Gateway REST API events. The
 *   answer is returned after the invocation's shadows and prediction records have settled (lambda-function.ts).
 * - `index.streaming`: function URLs with `InvokeMode: RESPONSE_STREAM`. The answer is written and the stream ended
 *   first, then the same work settles before the handler returns: the client does not wait for it.
 *
 * The first invocation logs the cold start split into phases ("sibyl lambda cold start"); loadtest/lambda/ reads it.
 */
import type { Writable } from 'node:stream';
import { loadLambdaConfig } from './lambda-config.ts';
import { createLambdaFunction, type InvocationContext } from './lambda-function.ts';
import type { HttpResult, HttpResultV2 } from './http-event.ts';

/** Set by the package's index.mjs before it imports this module; absent when run from source. */
const loadStart = (globalThis as { __sibylLoadStart?: number }).__sibylLoadStart;
const moduleLoaded = performance.now();

const config = loadLambdaConfig(process.env, process.env.LAMBDA_TASK_ROOT ?? process.cwd());
const configured = performance.now();
const fn = await createLambdaFunction(config);
const initialized = performance.now();

// Lambda sends SIGTERM before it shuts an environment down when an extension is registered: flush and free.
process.once('SIGTERM', () => {
  fn.close().finally(() => process.exit(0));
});

let coldStartLogged = false;
function logColdStart(): void {
  if (coldStartLogged) return;
  coldStartLogged = true;
  const last = fn.last;
  const r = (n: number | undefined) => (n === undefined ? undefined : Math.round(n * 10) / 10);
  const cpu = process.cpuUsage();
  // performance.now() counts from the process's start.
  fn.gateway.logger.info(
    {
      coldStart: {
        runtimeMs: r(loadStart ?? moduleLoaded),
        moduleMs: r(loadStart === undefined ? undefined : moduleLoaded - loadStart),
        configMs: r(configured - moduleLoaded),
        init: fn.init,
        initMs: r(initialized - configured),
        waitForFirstEventMs: r(performance.now() - initialized - (last ? last.answerMs + last.settleMs : 0)),
        firstAnswerMs: r(last?.answerMs),
        firstSettleMs: r(last?.settleMs),
        toFirstAnswerMs: r(performance.now() - (last?.settleMs ?? 0)),
        // CPU time (user + system) of the process until now: what a cold start costs without the waits for disk,
        // network and, on a shared machine, other processes.
        cpuMs: r((cpu.user + cpu.system) / 1000),
      },
    },
    'sibyl lambda cold start',
  );
}

export async function handler(event: unknown, context?: InvocationContext): Promise<HttpResult> {
  const result = await fn.invoke(event, context);
  logColdStart();
  return result;
}

interface AwsLambdaGlobal {
  streamifyResponse(handler: (event: unknown, stream: Writable, context: InvocationContext) => Promise<void>): unknown;
  HttpResponseStream: { from(stream: Writable, prelude: object): Writable };
}
const awslambda = (globalThis as { awslambda?: AwsLambdaGlobal }).awslambda;

/** The response-streaming handler (function URLs in RESPONSE_STREAM mode); undefined outside Lambda's runtime. */
export const streaming = awslambda?.streamifyResponse(async (event, stream, context) => {
  await fn.invoke(event, context, async (result) => {
    const r = result as HttpResultV2;
    const out = awslambda.HttpResponseStream.from(stream, { statusCode: r.statusCode, headers: r.headers, cookies: r.cookies ?? [] });
    const body = Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8');
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(body, () => resolve());
    });
  });
  logColdStart();
});

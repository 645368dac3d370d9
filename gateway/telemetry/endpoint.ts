/**
 * A door's operation as the OpenTelemetry semantic conventions name it: an HTTP server route (method and route
 * template, https://opentelemetry.io/docs/specs/semconv/http/http-spans/) or a gRPC method
 * (https://opentelemetry.io/docs/specs/semconv/rpc/grpc/). Each door makes one per route when it is mounted and
 * hands it to the entry with every request (the pipeline's `Arrival`); the span name and the fixed attributes are
 * computed here once, so a traced request only adds its own values and an untraced one reads nothing.
 */
export interface Endpoint {
  readonly protocol: 'http' | 'grpc';
  /** The request span's name: `POST /v1/models/{model}:predict`, `sibyl.v1.PredictionService/Predict`. */
  readonly spanName: string;
  /** `http.request.method`, `http.route`, `url.scheme`; or `rpc.system`, `rpc.service`, `rpc.method`. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** An HTTP route: `method` as sent (`POST`), `route` the template with `{name}` placeholders, never a raw path. */
export function httpEndpoint(method: string, route: string): Endpoint {
  return Object.freeze({
    protocol: 'http',
    spanName: `${method} ${route}`,
    attributes: Object.freeze({ 'http.request.method': method, 'http.route': route, 'url.scheme': 'http' }),
  });
}

/** A gRPC method: `service` fully qualified (`sibyl.v1.PredictionService`), `method` as declared (`Predict`). */
export function grpcEndpoint(service: string, method: string): Endpoint {
  return Object.freeze({
    protocol: 'grpc',
    spanName: `${service}/${method}`,
    attributes: Object.freeze({ 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method }),
  });
}

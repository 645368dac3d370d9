/**
 * The route table of a gateway that follows a control tower before its first state is loaded (no cache, tower
 * not reached yet). Every prediction and metadata call answers UNAVAILABLE: the client should retry (elsewhere),
 * unlike NOT_FOUND, which says the model does not exist. /readyz answers 503 meanwhile.
 */
import { SibylError } from '../../core/errors.ts';
import { RouteTable, type Route, type Selection } from '../routing/route-table.ts';

export class PendingRouteTable extends RouteTable {
  constructor() {
    super([]);
  }

  /** Throws UNAVAILABLE. */
  override select(model: string): Selection {
    throw notLoaded(model);
  }

  /** Throws UNAVAILABLE. */
  override resolve(model: string): Route {
    throw notLoaded(model);
  }
}

function notLoaded(model: string): SibylError {
  return new SibylError('UNAVAILABLE', `model "${model}" is not available: this gateway has not loaded its cell's models yet`);
}

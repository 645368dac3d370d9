/**
 * The code that runs inside a rule's isolate before the rule itself: it captures the intrinsics it needs (so a rule
 * that rewrites `Object`, `Array.prototype` or `Reflect` cannot change it), and its completion value is
 * `makeRunner(predict, outputNames, limits)`, which returns `run(input)`.
 *
 * `run({ rows, models, model, version })` calls `predict(rows[i], ctx)` for each row (awaiting thenables), then
 * copies each row's declared outputs into null-prototype objects, bounding sizes before anything leaves the
 * isolate. It returns `{ ok: { 0: row, 1: row, ... } }`, or `{ limit: message }` when the outputs are too big, or
 * `{ bad: message }` for a value that is not a row; a rule that throws makes `run` throw. Types are checked on the
 * host (output-check.ts).
 */
export const RUNNER_SOURCE = String.raw`(function () {
  'use strict';
  const create = Object.create;
  const defineProperty = Reflect.defineProperty;
  const isArray = Array.isArray;
  function put(obj, key, value) {
    const d = create(null);
    d.value = value; d.writable = true; d.enumerable = true; d.configurable = true;
    defineProperty(obj, key, d);
  }
  return function makeRunner(predict, names, limits) {
    const maxString = limits.maxString, maxVector = limits.maxVector, maxUnits = limits.maxUnits;
    const nNames = names.length;
    function verdict(key, value) { const v = create(null); v[key] = value; return v; }
    function finish(results, n) {
      let units = 0;
      const rows = create(null);
      for (let i = 0; i < n; i++) {
        const r = results[i];
        if (r === null || typeof r !== 'object' || isArray(r)) return verdict('bad', 'row ' + i + ': predict must return an object of outputs, got ' + (r === null ? 'null' : isArray(r) ? 'an array' : typeof r));
        const row = create(null);
        for (let k = 0; k < nNames; k++) {
          const name = names[k];
          const v = r[name];
          if (typeof v === 'string') {
            if (v.length > maxString) return verdict('limit', 'row ' + i + ': output "' + name + '" is a string of ' + v.length + ' characters (at most ' + maxString + ')');
            units += v.length;
            row[name] = v;
          } else if (isArray(v)) {
            const len = v.length;
            if (!(len <= maxVector)) return verdict('limit', 'row ' + i + ': output "' + name + '" has ' + len + ' elements (at most ' + maxVector + ')');
            const copy = [];
            for (let j = 0; j < len; j++) {
              const e = v[j];
              if (typeof e === 'string') {
                if (e.length > maxString) return verdict('limit', 'row ' + i + ': output "' + name + '"[' + j + '] is a string of ' + e.length + ' characters (at most ' + maxString + ')');
                units += e.length;
                put(copy, j, e);
              } else if (typeof e === 'object' || typeof e === 'function' || typeof e === 'symbol' || typeof e === 'bigint') {
                return verdict('bad', 'row ' + i + ': output "' + name + '"[' + j + '] is a ' + (e === null ? 'null' : typeof e) + ', not a number, string or boolean');
              } else put(copy, j, e);
            }
            units += len;
            row[name] = copy;
          } else if (typeof v === 'object' && v !== null || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
            return verdict('bad', 'row ' + i + ': output "' + name + '" is a ' + typeof v + ', not a number, string, boolean or array');
          } else {
            units += 1;
            if (v !== undefined) row[name] = v;
          }
          if (units > maxUnits) return verdict('limit', 'outputs exceed ' + maxUnits + ' characters and elements in one call');
        }
        rows[i] = row;
      }
      return verdict('ok', rows);
    }
    return function run(input) {
      const rows = input.rows, models = input.models, n = rows.length;
      const results = create(null);
      let pending = false;
      for (let i = 0; i < n; i++) {
        const ctx = { model: input.model, version: input.version, models: models ? models[i] : {} };
        const r = predict(rows[i], ctx);
        results[i] = r;
        if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') pending = true;
      }
      if (!pending) return finish(results, n);
      return (async function settle() {
        for (let i = 0; i < n; i++) results[i] = await results[i];
        return finish(results, n);
      })();
    };
  };
})()`;

/**
 * The code that runs inside a rule's isolate before the rule itself. Its completion value is
 * `makeRunner(rule, outputNames, limits)`, which returns `run(input)`.
 *
 * First it locks the realm down, so that nothing a call does can be seen by a later call (the rule's own
 * module scope is made again by every call: rule-module.ts):
 * - every object reachable from globalThis, and the intrinsics only instances reach (generator, async and
 *   iterator prototypes, the shared `stack` accessor of errors), is frozen: no global, prototype or built-in
 *   can be added to or changed. So that ordinary code still works on a frozen realm, assigning a property that
 *   a frozen prototype holds (`err.name = ...`, `obj.toString = ...`) defines it on the object instead, for the
 *   data properties of Object.prototype, Function.prototype and the Error prototypes (SES calls this the
 *   override mistake);
 * - the legacy RegExp statics (`RegExp.$1`, `RegExp.input`, `RegExp.lastMatch`...) are deleted: they hold the
 *   last match of any regular expression, a previous caller's input included;
 * - `Math.random` draws from a generator reseeded by the host on every call, so a call cannot leave a mark in its
 *   state for the next; `WeakRef` and `FinalizationRegistry` are removed (a callback could run in a later call).
 * It also captures the intrinsics it needs first (so a rule cannot change what the runner does).
 *
 * `run({ rows, models, model, version, seed })` (seed: 32 hex digits) calls `rule()` (a fresh module scope and its `predict`), then
 * `predict(rows[i], ctx)` for each row (awaiting thenables), then copies each row's declared outputs into
 * null-prototype objects, bounding sizes before anything leaves the isolate. It returns `{ ok: { 0: row, 1: row,
 * ... } }`, or `{ limit: message }` when the outputs are too big, or `{ bad: message }` for a value that is not a
 * row; a rule that throws makes `run` throw. Types are checked on the host (output-check.ts).
 */
export const RUNNER_SOURCE = String.raw`(function () {
  'use strict';
  const create = Object.create;
  const defineProperty = Reflect.defineProperty;
  const isArray = Array.isArray;
  const freeze = Object.freeze;
  const getPrototypeOf = Reflect.getPrototypeOf;
  const ownKeys = Reflect.ownKeys;
  const getOwnPropertyDescriptor = Reflect.getOwnPropertyDescriptor;
  const TypeErrorCtor = TypeError;

  // Math.random: sfc32, reseeded by every call (53 bits from two draws).
  let s0 = 0, s1 = 0, s2 = 0, s3 = 1;
  function next32() {
    const t = (((s0 + s1) | 0) + s3) | 0;
    s3 = (s3 + 1) | 0;
    s0 = s1 ^ (s1 >>> 9);
    s1 = (s2 + (s2 << 3)) | 0;
    s2 = (s2 << 21) | (s2 >>> 11);
    s2 = (s2 + t) | 0;
    return t >>> 0;
  }
  // The seed of this call: applied at the first Math.random() of the call (most rules never draw).
  const parseHex = parseInt;
  let seed = '';
  function reseed() {
    s0 = parseHex(seed.slice(0, 8), 16) | 0; s1 = parseHex(seed.slice(8, 16), 16) | 0;
    s2 = parseHex(seed.slice(16, 24), 16) | 0; s3 = parseHex(seed.slice(24, 32), 16) | 0;
    seed = '';
    for (let i = 0; i < 12; i++) next32();
  }
  defineProperty(Math, 'random', {
    value: function random() {
      if (seed !== '') reseed();
      return (next32() * 2097152 + (next32() >>> 11)) / 9007199254740992;
    },
    writable: true, enumerable: false, configurable: true,
  });
  for (const k of ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9', 'input', '$_', 'lastMatch', '$&', 'lastParen', '$+', 'leftContext', '$\u0060', 'rightContext', "$'"]) delete RegExp[k];
  delete globalThis.WeakRef;
  delete globalThis.FinalizationRegistry;

  // The override mistake: these data properties become accessors whose setter defines an own property on the
  // object assigned to (and refuses to change the prototype itself).
  function tame(proto, keys) {
    for (const k of keys) {
      const d = getOwnPropertyDescriptor(proto, k);
      if (!d || !('value' in d) || !d.writable) continue;
      const value = d.value;
      defineProperty(proto, k, {
        get: function () { return value; },
        set: function (v) {
          if (this === proto) throw new TypeErrorCtor('Cannot assign to read only property ' + String(k) + ' of a built-in prototype');
          if (!defineProperty(this, k, { value: v, writable: true, enumerable: true, configurable: true })) throw new TypeErrorCtor('Cannot define property ' + String(k));
        },
        enumerable: d.enumerable,
        configurable: false,
      });
    }
  }
  tame(Object.prototype, ownKeys(Object.prototype));
  tame(Function.prototype, ['constructor', 'toString']);
  for (const E of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) tame(E.prototype, ['constructor', 'name', 'message', 'toString']);

  // Freeze everything reachable from these roots (own properties, accessors, prototypes).
  const stackAccessor = getOwnPropertyDescriptor(new Error(''), 'stack');
  const roots = [
    globalThis, stackAccessor,
    getPrototypeOf(function* () {}), getPrototypeOf(async function () {}), getPrototypeOf(async function* () {}),
    getPrototypeOf([][Symbol.iterator]()), getPrototypeOf(new Map()[Symbol.iterator]()), getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(''[Symbol.iterator]()), getPrototypeOf(/a/[Symbol.matchAll]('')),
  ];
  if (typeof Iterator === 'function' && typeof Iterator.from === 'function') {
    roots.push(getPrototypeOf([].values().map(function (x) { return x; })), getPrototypeOf(Iterator.from({ next: function () { return { done: true }; } })));
  }
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    const segments = new Intl.Segmenter().segment('');
    roots.push(getPrototypeOf(segments), getPrototypeOf(segments[Symbol.iterator]()));
  }
  const seen = new WeakSet();
  const stack = roots;
  while (stack.length > 0) {
    const o = stack.pop();
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
    seen.add(o);
    freeze(o);
    stack.push(getPrototypeOf(o));
    for (const k of ownKeys(o)) {
      const d = getOwnPropertyDescriptor(o, k);
      if (!d) continue;
      if ('value' in d) stack.push(d.value);
      else stack.push(d.get, d.set);
    }
  }

  function put(obj, key, value) {
    const d = create(null);
    d.value = value; d.writable = true; d.enumerable = true; d.configurable = true;
    defineProperty(obj, key, d);
  }
  return function makeRunner(rule, names, limits) {
    freeze(rule);
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
      seed = input.seed;
      const predict = rule();
      if (typeof predict !== 'function') throw new TypeErrorCtor('predict is not a function');
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

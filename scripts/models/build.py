"""Builds Sibyl's demo and test models into models/ (run through build.sh, which pins the tool versions).

Outputs, all deterministic (fixed seeds, one thread):
  models/features.jsonl            seed population of the embedded feature store (restaurant, zone, customer)
  models/<name>/<version>/         bundle: sibyl.yaml (manifest with the training statistics), model.onnx, expected.json
  models/deployment.yaml           local desired state: default version and aliases per model

expected.json holds ~50 rows whose store features come from features.jsonl, with the outputs the TRAINING library
produced (LightGBM / scikit-learn, float64), and the largest difference the Python onnxruntime (float32) showed.
"""
import json
import os
import sys
from pathlib import Path

for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(var, '1')

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import sklearn  # noqa: E402
import yaml  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402
from export import lightgbm_to_onnx, run_onnx, sklearn_to_onnx  # noqa: E402
from synth import CUSTOMER, INTEGER, REQUEST, RESTAURANT, ZONE  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / 'models'
N_RESTAURANTS, N_ZONES, N_CUSTOMERS = 1000, 200, 1000
N_TRAIN = 20000
N_EXPECTED = 50
N_TESTS = 3

ENTITY_OF = {**{f: 'restaurant' for f in RESTAURANT}, **{f: 'zone' for f in ZONE}, **{f: 'customer' for f in CUSTOMER}}
ENTITY_PREFIX = {'restaurant': 'r', 'zone': 'z', 'customer': 'c'}

DESCRIPTIONS = {
    'distance_km': 'route distance restaurant to customer, km',
    'hour_of_day': 'local hour the order was placed, 0-23',
    'day_of_week': 'local day of week, 0 = Monday',
    'basket_size': 'number of items',
    'basket_value': 'basket value, currency units',
    'is_raining': '1 when it rains in the zone, else 0',
    'is_weekend': '1 on Saturday and Sunday, else 0',
    'promised_minutes': 'delivery time quoted at checkout, minutes',
    'eta_minutes': 'predicted delivery time, minutes',
    'prep_time_avg_7d': 'mean kitchen prep time over 7 days, minutes',
    'prep_time_avg_1h': 'mean kitchen prep time over the last hour, minutes',
    'orders_last_30m': 'orders received in the last 30 minutes',
    'cancel_rate_7d': 'share of orders cancelled over 7 days, 0-1',
    'rating_avg_30d': 'mean customer rating over 30 days, 1-5',
    'kitchen_load': 'orders in the last 30 minutes over kitchen capacity, 0-1.5',
    'active_riders': 'riders online in the zone',
    'open_orders': 'orders not yet picked up in the zone',
    'rider_wait_avg_15m': 'mean wait for a rider over 15 minutes, minutes',
    'traffic_index': 'road congestion, 0 (free) - 1 (jammed)',
    'avg_speed_kmh': 'mean rider speed over the last hour, km/h',
    'distance_to_door_m': 'walk from the drop-off point to the door, metres',
    'building_floor': 'floor of the delivery address',
}


def num(name: str, value: float) -> int | float:
    """A JSON/YAML number: whole-number features as int, others as the shortest float repr."""
    return int(round(value)) if name in INTEGER else float(value)


# --- seed population -------------------------------------------------------------------------------------------

def population(rng: np.random.Generator) -> dict[str, list[dict]]:
    made = {
        'restaurant': (synth.restaurants(rng, N_RESTAURANTS), RESTAURANT),
        'zone': (synth.zones(rng, N_ZONES), ZONE),
        'customer': (synth.customers(rng, N_CUSTOMERS), CUSTOMER),
    }
    pop: dict[str, list[dict]] = {}
    for entity, (cols, names) in made.items():
        n = len(cols[names[0]])
        pop[entity] = [
            {'entity': entity, 'id': f'{ENTITY_PREFIX[entity]}{i + 1}', 'features': {f: num(f, cols[f][i]) for f in names}}
            for i in range(n)
        ]
    return pop


def write_population(pop: dict[str, list[dict]]) -> None:
    with open(OUT / 'features.jsonl', 'w') as fh:
        for rows in pop.values():
            for row in rows:
                fh.write(json.dumps(row, separators=(',', ':')) + '\n')


def defaults(pop: dict[str, list[dict]]) -> dict[str, int | float]:
    """Store-feature defaults: the population median (rounded to the feature's grid)."""
    out: dict[str, int | float] = {}
    for rows in pop.values():
        for f in rows[0]['features']:
            med = float(np.median([r['features'][f] for r in rows]))
            out[f] = num(f, round(med, 2))
    return out


REQUEST_DEFAULTS = {'distance_km': 3.0, 'hour_of_day': 13, 'day_of_week': 2, 'basket_size': 3, 'basket_value': 30.0,
                    'is_raining': 0, 'is_weekend': 0, 'promised_minutes': 35, 'eta_minutes': 35.0}


# --- data ------------------------------------------------------------------------------------------------------

def training_frame(rng: np.random.Generator) -> dict[str, np.ndarray]:
    f = synth.merge(synth.requests(rng, N_TRAIN), synth.restaurants(rng, N_TRAIN), synth.zones(rng, N_TRAIN),
                    synth.customers(rng, N_TRAIN))
    f['minutes'] = synth.delivery_minutes(rng, f)
    f['promised_minutes'] = synth.promised_minutes(rng, f)
    f['late'] = (f['minutes'] > f['promised_minutes']).astype(np.int64)
    f['eta_minutes'] = np.clip(f['minutes'] + rng.normal(0.0, 3.0, N_TRAIN), 8.0, 120.0).round(1)
    f['tip'] = synth.tip_amount(rng, f)
    return f


def expected_rows(rng: np.random.Generator, pop: dict[str, list[dict]]) -> list[dict]:
    """Fixed inputs: entity ids drawn from the population, their stored features, and request features."""
    req = synth.requests(rng, N_EXPECTED)
    picks = {e: rng.integers(0, len(rows), N_EXPECTED) for e, rows in pop.items()}
    frame = synth.merge(req, {f: np.array([pop[ENTITY_OF[f]][picks[ENTITY_OF[f]][i]]['features'][f] for i in range(N_EXPECTED)],
                                          dtype=np.float64) for f in ENTITY_OF})
    promised = synth.promised_minutes(rng, frame)
    eta = rng.uniform(10.0, 70.0, N_EXPECTED).round(1)
    rows = []
    for i in range(N_EXPECTED):
        values = {f: num(f, frame[f][i]) for f in [*REQUEST, *ENTITY_OF]}
        values['promised_minutes'] = num('promised_minutes', promised[i])
        values['eta_minutes'] = float(eta[i])
        rows.append({'entities': {e: pop[e][picks[e][i]]['id'] for e in pop}, 'values': values})
    return rows


# --- bundles ---------------------------------------------------------------------------------------------------

def feature_specs(names: list[str], store_defaults: dict[str, int | float]) -> list[dict]:
    specs = []
    for n in names:
        spec: dict = {'name': n, 'dtype': 'float32'}
        if n in ENTITY_OF:
            spec.update(source='store', entity=ENTITY_OF[n], default=store_defaults[n])
        else:
            spec.update(source='request', default=REQUEST_DEFAULTS[n])
        spec['description'] = DESCRIPTIONS[n]
        specs.append(spec)
    return specs


def plain(value):
    """numpy → JSON/YAML-native values."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


# --- training statistics ---------------------------------------------------------------------------------------

HISTOGRAM_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def sig(value: float, digits: int = 8) -> float:
    """A float rounded to `digits` significant digits (short YAML, same value for every practical purpose)."""
    return float(f'{float(value):.{digits}g}')


def numeric_statistics(values: np.ndarray) -> dict:
    """Count, missing share, mean, population variance, min, max and a decile histogram of one column.

    Edges are the column's deciles (duplicates dropped, so a 0/1 flag has one edge); bin 0 holds values <= edges[0],
    bin i values in (edges[i-1], edges[i]], the last bin values above the last edge (runtimes/manifest-fields.ts).
    """
    v = np.asarray(values, dtype=np.float64)
    present = v[~np.isnan(v)]
    edges = sorted({sig(e, 6) for e in np.quantile(present, HISTOGRAM_QUANTILES)})
    counts = np.bincount(np.searchsorted(np.array(edges), present, side='left'), minlength=len(edges) + 1)
    return {
        'count': int(len(v)), 'missing': sig(1 - len(present) / len(v)),
        'mean': sig(present.mean()), 'variance': sig(present.var()), 'min': sig(present.min()), 'max': sig(present.max()),
        'histogram': {'edges': edges, 'counts': [int(c) for c in counts]},
    }


def categorical_statistics(values: np.ndarray) -> dict:
    """Count, missing share and the count of each category (as its string, e.g. '0' and '1' for a class label)."""
    v = np.asarray(values)
    cats, counts = np.unique(v, return_counts=True)
    return {'count': int(len(v)), 'missing': 0.0, 'categories': {str(plain(c)): int(n) for c, n in zip(cats, counts)}}


def training_statistics(train, features: list[str], outputs: dict[str, np.ndarray], labels: set[str]) -> dict:
    """The manifest's `statistics:`: every feature over the training frame, every output (the training library's
    predictions on the training frame; a vector output per element, as `name[i]`), labels as categories."""
    out: dict = {}
    for name, v in outputs.items():
        v = np.asarray(v)
        if v.ndim == 2:
            for i in range(v.shape[1]):
                out[f'{name}[{i}]'] = numeric_statistics(v[:, i])
        else:
            out[name] = categorical_statistics(v) if name in labels else numeric_statistics(v)
    return {
        'source': f'the training frame of scripts/models/build.py: {N_TRAIN} synthetic rows (seed 2002)',
        'features': {f: numeric_statistics(train[f]) for f in features},
        'outputs': out,
    }


def write_bundle(bundle: dict, model: onnx.ModelProto, rows: list[dict], expected: dict[str, np.ndarray], report: dict,
                 statistics: dict | None = None) -> dict:
    """Writes models/<name>/<version>/ and returns the measured differences."""
    name, version = bundle['name'], bundle['version']
    folder = OUT / name / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'model.onnx').write_bytes(model.SerializeToString(deterministic=True))

    features = [f['name'] for f in bundle['features']]
    out_rows = []
    for i, row in enumerate(rows):
        entities = {f['entity'] for f in bundle['features'] if f['source'] == 'store'}
        out_rows.append({
            'entities': {e: row['entities'][e] for e in sorted(entities)},
            'request': {f: row['values'][f] for f in features if f not in ENTITY_OF},
            'features': {f: row['values'][f] for f in features},
            'expected': {k: plain(v[i]) for k, v in expected.items()},
        })
    tolerance = report.pop('tolerance')
    bundle['tests'] = [
        {'name': f'expected row {i}', 'features': r['features'], 'expected': r['expected'], 'tolerance': tolerance}
        for i, r in enumerate(out_rows[:N_TESTS])
    ]
    if statistics is not None:
        bundle['statistics'] = statistics
    with open(folder / 'sibyl.yaml', 'w') as fh:
        fh.write('# yaml-language-server: $schema=../../../schemas/sibyl.schema.json\n')
        fh.write(f'# {name} version {version}: written by scripts/models/build.py, do not edit by hand.\n')
        yaml.safe_dump(bundle, fh, sort_keys=False, width=1000, default_flow_style=None)
    doc = {'model': name, 'version': version, **report, 'rows': out_rows}
    with open(folder / 'expected.json', 'w') as fh:
        json.dump(doc, fh, indent=1)
        fh.write('\n')
    return report


def compare(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Max absolute and relative difference per output (labels: count of mismatches as the absolute difference)."""
    abs_d, rel_d = {}, {}
    for k, e in expected.items():
        g = np.asarray(got[k]).reshape(np.asarray(e).shape).astype(np.float64)
        d = np.abs(g - e)
        abs_d[k] = float(d.max())
        rel_d[k] = float((d / np.maximum(np.abs(e), 1e-12)).max())
    return abs_d, rel_d


def onnx_outputs(model: onnx.ModelProto, input_name: str, x: np.ndarray, mapping: dict[str, str]) -> dict[str, np.ndarray]:
    raw = run_onnx(model, input_name, x)
    return {as_: raw[name] for name, as_ in mapping.items()}


def build_delivery_eta(train, rows, store_defaults, version: str, params: dict, default: bool) -> dict:
    names = [*REQUEST, *RESTAURANT, *ZONE, *CUSTOMER]
    x = synth.matrix(train, names)
    reg = lgb.LGBMRegressor(objective='regression', random_state=17, deterministic=True, force_row_wise=True,
                            n_jobs=1, verbose=-1, **params)
    reg.fit(x, train['minutes'])
    model = lightgbm_to_onnx(reg, len(names), 'features', 'delivery_eta', {'variable': 'eta_minutes'})
    xe = np.array([[r['values'][n] for n in names] for r in rows], dtype=np.float64)
    expected = {'eta_minutes': reg.predict(xe)}
    abs_d, rel_d = compare(expected, onnx_outputs(model, 'features', xe, {'eta_minutes': 'eta_minutes'}))
    train_abs, train_rel = compare({'eta_minutes': reg.predict(x)}, onnx_outputs(model, 'features', x, {'eta_minutes': 'eta_minutes'}))
    bundle = {
        'name': 'delivery-eta', 'version': version, 'runtime': 'onnx', 'default': default,
        'description': f'Door-to-door delivery time in minutes (LightGBM regressor, {params["n_estimators"]} trees, '
                       f'{params["num_leaves"]} leaves) from request, restaurant, zone and customer features.',
        'owner': 'eta-team',
        'features': feature_specs(names, store_defaults),
        'onnx': {'file': 'model.onnx', 'inputs': [{'name': 'features', 'dtype': 'float32', 'features': names}],
                 'outputs': [{'name': 'eta_minutes', 'kind': 'scalar'}]},
    }
    report = {
        'produced_by': f'lightgbm {lgb.__version__} LGBMRegressor.predict (float64)',
        'tolerance': 1e-4,
        'max_abs_diff_onnxruntime': abs_d, 'max_rel_diff_onnxruntime': rel_d,
        'train_max_abs_diff_onnxruntime': train_abs, 'train_max_rel_diff_onnxruntime': train_rel,
    }
    stats = training_statistics(train, names, {'eta_minutes': reg.predict(x)}, set())
    return write_bundle(bundle, model, rows, expected, report, stats)


RISK_FEATURES = ['distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'promised_minutes',
                 'prep_time_avg_7d', 'prep_time_avg_1h', 'orders_last_30m', 'kitchen_load',
                 'active_riders', 'open_orders', 'rider_wait_avg_15m', 'traffic_index']


def build_eta_risk(train, rows, store_defaults) -> dict:
    names = RISK_FEATURES
    x = synth.matrix(train, names)
    clf = GradientBoostingClassifier(n_estimators=120, max_depth=3, learning_rate=0.1, random_state=23)
    clf.fit(x, train['late'])
    mapping = {'label': 'is_late', 'probabilities': 'probabilities'}
    model = sklearn_to_onnx(clf, len(names), 'features', 'eta_risk', {}, classifier=True)
    xe = np.array([[r['values'][n] for n in names] for r in rows], dtype=np.float64)
    expected = {'is_late': clf.predict(xe), 'probabilities': clf.predict_proba(xe)}
    abs_d, rel_d = compare(expected, onnx_outputs(model, 'features', xe, mapping))
    train_abs, train_rel = compare({'is_late': clf.predict(x), 'probabilities': clf.predict_proba(x)},
                                   onnx_outputs(model, 'features', x, mapping))
    bundle = {
        'name': 'eta-risk', 'version': '1', 'runtime': 'onnx', 'default': True,
        'description': 'Will the order arrive after the promised time? Gradient-boosted classifier (scikit-learn, '
                       '120 trees of depth 3): is_late (0/1) and probabilities [on time, late].',
        'owner': 'eta-team',
        'features': feature_specs(names, store_defaults),
        'onnx': {'file': 'model.onnx', 'inputs': [{'name': 'features', 'dtype': 'float32', 'features': names}],
                 'outputs': [{'name': 'label', 'as': 'is_late', 'kind': 'scalar', 'dtype': 'int64'},
                             {'name': 'probabilities', 'kind': 'vector'}]},
    }
    report = {
        'produced_by': f'scikit-learn {sklearn.__version__} GradientBoostingClassifier.predict / predict_proba (float64)',
        'tolerance': 1e-5,
        'class_balance_late': float(train['late'].mean()),
        'max_abs_diff_onnxruntime': abs_d, 'max_rel_diff_onnxruntime': rel_d,
        'train_max_abs_diff_onnxruntime': train_abs, 'train_max_rel_diff_onnxruntime': train_rel,
    }
    stats = training_statistics(train, names, {'is_late': clf.predict(x), 'probabilities': clf.predict_proba(x)}, {'is_late'})
    return write_bundle(bundle, model, rows, expected, report, stats)


MLP_FEATURES = ['basket_value', 'distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'eta_minutes']


def build_tabular_mlp(train, rows) -> dict:
    names = MLP_FEATURES
    x = synth.matrix(train, names)
    pipe = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=400, tol=1e-5,
                                                        learning_rate_init=0.003, random_state=31))
    pipe.fit(x, train['tip'])
    model = sklearn_to_onnx(pipe, len(names), 'input', 'tabular_mlp', {'variable': 'output'})
    xe = np.array([[r['values'][n] for n in names] for r in rows], dtype=np.float64)
    expected = {'output': pipe.predict(xe)}
    abs_d, rel_d = compare(expected, onnx_outputs(model, 'input', xe, {'output': 'output'}))
    train_abs, train_rel = compare({'output': pipe.predict(x)}, onnx_outputs(model, 'input', x, {'output': 'output'}))
    bundle = {
        'name': 'tabular-mlp', 'version': '1', 'runtime': 'onnx', 'default': True,
        'description': 'Expected rider tip in currency units: a small MLP (scikit-learn, 16x8 ReLU, standardised '
                       'inputs) over one [N, 6] float32 tensor named "input"; every feature comes with the request.',
        'owner': 'ml-platform',
        'features': feature_specs(names, {}),
        'onnx': {'file': 'model.onnx', 'inputs': [{'name': 'input', 'dtype': 'float32', 'features': names}],
                 'outputs': [{'name': 'output', 'kind': 'scalar'}]},
    }
    report = {
        'produced_by': f'scikit-learn {sklearn.__version__} Pipeline(StandardScaler, MLPRegressor).predict (float64)',
        'tolerance': 1e-5,
        'max_abs_diff_onnxruntime': abs_d, 'max_rel_diff_onnxruntime': rel_d,
        'train_max_abs_diff_onnxruntime': train_abs, 'train_max_rel_diff_onnxruntime': train_rel,
    }
    stats = training_statistics(train, names, {'output': pipe.predict(x)}, set())
    return write_bundle(bundle, model, rows, expected, report, stats)


DEPLOYMENT = {
    'models': {
        'delivery-eta': {'default': '2', 'aliases': {'stable': '1', 'canary': '2'}},
        'eta-risk': {'default': '1', 'aliases': {'stable': '1'}},
        'tabular-mlp': {'default': '1', 'aliases': {'stable': '1'}},
    },
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    pop = population(np.random.default_rng(1001))
    write_population(pop)
    store_defaults = defaults(pop)
    train = training_frame(np.random.default_rng(2002))
    rows = expected_rows(np.random.default_rng(3003), pop)

    reports = {
        'delivery-eta/1': build_delivery_eta(train, rows, store_defaults, '1',
                                             {'n_estimators': 120, 'num_leaves': 15, 'learning_rate': 0.1,
                                              'min_child_samples': 40}, default=False),
        'delivery-eta/2': build_delivery_eta(train, rows, store_defaults, '2',
                                             {'n_estimators': 250, 'num_leaves': 31, 'learning_rate': 0.05,
                                              'min_child_samples': 20, 'subsample': 0.8, 'subsample_freq': 1,
                                              'colsample_bytree': 0.9}, default=True),
        'eta-risk/1': build_eta_risk(train, rows, store_defaults),
        'tabular-mlp/1': build_tabular_mlp(train, rows),
    }
    with open(OUT / 'deployment.yaml', 'w') as fh:
        fh.write('# Local desired state: the default version and the aliases of each model (written by scripts/models/build.py).\n')
        yaml.safe_dump(DEPLOYMENT, fh, sort_keys=False)
    for key, rep in reports.items():
        print(f'{key}: max |expected - onnxruntime| {rep["max_abs_diff_onnxruntime"]} '
              f'(relative {rep["max_rel_diff_onnxruntime"]}); over the training set {rep["train_max_abs_diff_onnxruntime"]}')


if __name__ == '__main__':
    main()

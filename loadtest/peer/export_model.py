"""Writes the LightGBM booster MLServer serves as the peer: delivery-eta version 2, retrained exactly as
scripts/models/build.py trains it (same training frame seed, same parameters, one thread, deterministic), then
checked against the float64 outputs recorded in models/delivery-eta/2/expected.json (must match to 1e-9).

Run through export-model.sh (which uses the pinned .venv-models/). Output: loadtest/peer/delivery-eta/model.txt
"""
import json
import os
import sys
from pathlib import Path

for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(var, '1')

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'scripts' / 'models'))

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402

import build  # noqa: E402  (the model builder; importing it does not build anything)
import synth  # noqa: E402

# Must equal the parameters build.main() gives delivery-eta version 2.
PARAMS_V2 = {'n_estimators': 250, 'num_leaves': 31, 'learning_rate': 0.05, 'min_child_samples': 20,
             'subsample': 0.8, 'subsample_freq': 1, 'colsample_bytree': 0.9}


def main() -> None:
    names = [*synth.REQUEST, *synth.RESTAURANT, *synth.ZONE, *synth.CUSTOMER]
    train = build.training_frame(np.random.default_rng(2002))
    reg = lgb.LGBMRegressor(objective='regression', random_state=17, deterministic=True, force_row_wise=True,
                            n_jobs=1, verbose=-1, **PARAMS_V2)
    reg.fit(synth.matrix(train, names), train['minutes'])

    expected = json.loads((ROOT / 'models' / 'delivery-eta' / '2' / 'expected.json').read_text())
    manifest_names = names
    x = np.array([[r['features'][n] for n in manifest_names] for r in expected['rows']], dtype=np.float64)
    want = np.array([r['expected']['eta_minutes'] for r in expected['rows']])
    booster = reg.booster_
    diff = float(np.max(np.abs(booster.predict(x) - want)))
    if diff > 1e-9:
        raise SystemExit(f'retrained booster differs from models/delivery-eta/2/expected.json by {diff}')

    out = ROOT / 'loadtest' / 'peer' / 'delivery-eta'
    out.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out / 'model.txt'))
    print(f'wrote {out / "model.txt"}: {booster.num_trees()} trees, {len(names)} features; '
          f'max |booster - expected.json| = {diff:.2e}')


if __name__ == '__main__':
    main()

-- Rollouts: a version moved through waves of cells with bake times and guards (control-tower/rollout/), and the
-- lease that lets one tower replica at a time drive them.

CREATE TABLE rollouts (
  id          bigserial PRIMARY KEY,
  model_name  text NOT NULL REFERENCES models (name),
  version     text NOT NULL,
  -- pending | applying | baking | checking | halted | completed
  state       text NOT NULL CHECK (state IN ('pending', 'applying', 'baking', 'checking', 'halted', 'completed')),
  -- Index of the current wave in `waves`.
  wave        integer NOT NULL DEFAULT 0,
  -- Mode, weight, bake, guards, timeouts, rollback scope: fixed at creation.
  spec        jsonb NOT NULL,
  -- Per wave: name, cells, status, what the cells held before, revisions, timestamps, figures, verdict.
  waves       jsonb NOT NULL,
  halt_reason text,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version)
);
-- At most one unfinished rollout per model.
CREATE UNIQUE INDEX rollouts_active_model ON rollouts (model_name) WHERE state NOT IN ('halted', 'completed');

-- One row: the tower replica that drives rollouts until `expires_at` (renewed while it runs).
CREATE TABLE rollout_lease (
  id         integer PRIMARY KEY CHECK (id = 1),
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
);

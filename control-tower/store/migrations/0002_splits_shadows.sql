-- Traffic splits among a model's versions and shadow executions, per cell (part of the desired state).

-- Arms of a model's split in a cell; each arm's version is deployed there.
CREATE TABLE cell_splits (
  cell       text NOT NULL,
  model_name text NOT NULL,
  arm        text NOT NULL,
  version    text NOT NULL,
  weight     double precision NOT NULL CHECK (weight >= 0),
  position   integer NOT NULL,
  PRIMARY KEY (cell, model_name, arm),
  FOREIGN KEY (cell, model_name, version) REFERENCES deployments (cell, model_name, version)
);

-- Shadows of a model in a cell: versions of it or of other models, each deployed there.
CREATE TABLE cell_shadows (
  cell           text NOT NULL,
  model_name     text NOT NULL,
  shadow_model   text NOT NULL,
  shadow_version text NOT NULL,
  position       integer NOT NULL,
  PRIMARY KEY (cell, model_name, shadow_model, shadow_version),
  FOREIGN KEY (cell, shadow_model, shadow_version) REFERENCES deployments (cell, model_name, version)
);
CREATE INDEX cell_shadows_target ON cell_shadows (shadow_model, shadow_version);

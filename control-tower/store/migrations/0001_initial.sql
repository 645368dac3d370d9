-- Models, immutable versions, cells with their desired state (deployments, defaults, aliases) and revisions,
-- gateway reports, API tokens, and the audit log.

CREATE TABLE models (
  name       text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_versions (
  model_name text NOT NULL REFERENCES models (name),
  version    text NOT NULL,
  seq        bigserial NOT NULL,
  sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  runtime    text NOT NULL,
  manifest   jsonb NOT NULL,
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_by text,
  retired_at timestamptz,
  PRIMARY KEY (model_name, version)
);

CREATE TABLE cells (
  name       text PRIMARY KEY,
  -- Starts at 1, so a gateway that holds nothing (revision 0) gets the state at once.
  revision   bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deployments (
  cell        text NOT NULL REFERENCES cells (name),
  model_name  text NOT NULL,
  version     text NOT NULL,
  deployed_by text NOT NULL,
  deployed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cell, model_name, version),
  FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version)
);
CREATE INDEX deployments_version ON deployments (model_name, version);

-- A default or an alias can only name a version deployed in that cell.
CREATE TABLE cell_defaults (
  cell       text NOT NULL,
  model_name text NOT NULL,
  version    text NOT NULL,
  PRIMARY KEY (cell, model_name),
  FOREIGN KEY (cell, model_name, version) REFERENCES deployments (cell, model_name, version)
);

CREATE TABLE cell_aliases (
  cell       text NOT NULL,
  model_name text NOT NULL,
  alias      text NOT NULL,
  version    text NOT NULL,
  PRIMARY KEY (cell, model_name, alias),
  FOREIGN KEY (cell, model_name, version) REFERENCES deployments (cell, model_name, version)
);

CREATE TABLE gateway_reports (
  cell        text NOT NULL REFERENCES cells (name),
  replica     text NOT NULL,
  report      jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cell, replica)
);

CREATE TABLE api_tokens (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL,
  role        text NOT NULL CHECK (role IN ('admin', 'publisher', 'viewer')),
  token_hash  text NOT NULL UNIQUE,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
-- A name belongs to at most one live token; a revoked name may be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
  id      bigserial PRIMARY KEY,
  time    timestamptz NOT NULL DEFAULT now(),
  actor   text NOT NULL,
  action  text NOT NULL,
  target  text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}'
);

-- The service's state (SQLite). Append new migrations as 0002_*.sql here and in ../postgres.
-- Times are seconds since the Unix epoch (REAL, milliseconds).

-- Every version of every pipeline, as given.
CREATE TABLE pipelines (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    declaration TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (name, version)
);

-- One row per webhook: the registry's exported state of it (secret and URL token included).
CREATE TABLE webhooks (
    name TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    last_triggered REAL
);

CREATE TABLE executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    pipeline_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_summary TEXT,
    webhook_arn TEXT NOT NULL,
    start_time REAL NOT NULL,
    last_update_time REAL NOT NULL,
    -- The instance that runs its on-trigger program (NULL: none runs).
    instance TEXT
);
CREATE INDEX executions_pipeline ON executions (pipeline, seq);
CREATE INDEX executions_status ON executions (status);

-- X-GitHub-Delivery ids seen, per webhook, for the duplicate window.
CREATE TABLE deliveries (
    webhook TEXT NOT NULL,
    delivery TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (webhook, delivery)
) WITHOUT ROWID;
CREATE INDEX deliveries_at ON deliveries (at);

-- Settings shared by every instance (the NextToken key).
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Counters updated in the transactions that need them: 'webhooks' (the quota), 'changes' (the
-- change feed's sequence; its row lock orders the feed by commit).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('webhooks', 0), ('changes', 0);

-- The change feed: what each committed write changed ('pipeline' or 'webhook', and its name), in
-- commit order. Every instance polls it and reloads only those rows into its cache.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    at REAL NOT NULL
);

-- Running instances and their heartbeat: an execution left InProgress by an instance whose
-- heartbeat stopped is marked Stopped.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL
);

-- Issue 17 (speed): on SQLite the duplicate window is held in memory (cli/src/serve/dedupe.rs:
-- one process holds the database), and the ids are only appended here, in the trigger's own
-- transaction, so that a restart fills the window again. A table keyed by the ids made each
-- random GUID of a batch dirty a leaf of its own; appends dirty the last one. The webhook
-- index (its rows in seq order within a webhook) serves DeleteWebhook.
CREATE TABLE delivery_ids (
    seq INTEGER PRIMARY KEY,
    webhook TEXT NOT NULL,
    delivery TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX delivery_ids_webhook ON delivery_ids (webhook);
INSERT INTO delivery_ids (webhook, delivery, at) SELECT webhook, delivery, at FROM deliveries ORDER BY at;
DROP TABLE deliveries;

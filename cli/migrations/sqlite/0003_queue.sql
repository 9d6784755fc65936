-- Executions waiting for the on-trigger program (issue 18): durable rows, the payload spooled
-- here, claimed by one instance at a time ('Queued' -> 'Running', claimed_by), removed when the
-- execution ends. pgid: the program's process group while it runs, so that a server restarted
-- after kill -9 can end what the dead one left.
CREATE TABLE queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    webhook TEXT NOT NULL,
    event TEXT NOT NULL,
    delivery TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL,
    claimed_by TEXT,
    pgid INTEGER,
    enqueued REAL NOT NULL
);
CREATE INDEX queue_state ON queue (state, seq);

-- 'queued': how many rows wait ('Queued'), kept in the transactions that add and claim them, so
-- the bound holds over every instance.
INSERT INTO counters (name, value) VALUES ('queued', 0);

-- The write probe of /healthz.
INSERT INTO meta (name, value) VALUES ('probe', '0');

-- The delivery log: one row per delivery to a known webhook (unknown tokens are only counted),
-- kept to the last N per webhook and D days (serve's --deliveries-keep, --deliveries-days).
-- headers: a JSON object of an allow-list of request headers (no credentials); verdict: the
-- verdict's typed JSON; body: the raw body up to --deliveries-body-cap bytes (body_size is the
-- whole size, body_truncated says whether it was cut).
CREATE TABLE delivery_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    event TEXT,
    delivery TEXT,
    source TEXT,
    status BIGINT NOT NULL,
    decision TEXT NOT NULL,
    verdict TEXT NOT NULL,
    execution_id TEXT,
    headers TEXT NOT NULL,
    body BYTEA,
    body_size BIGINT NOT NULL,
    body_truncated BIGINT NOT NULL,
    redelivery_of BIGINT
);
CREATE INDEX delivery_log_webhook ON delivery_log (webhook, id);
CREATE INDEX delivery_log_received ON delivery_log (received_at);

-- Pushed authorization requests (RFC 9126): a request's parameters, kept under the hash of its
-- request_uri until it is used once or expires; and clients that must push theirs.
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE pushed_requests (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);

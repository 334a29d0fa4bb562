-- Pushed authorization requests (RFC 9126): a request's parameters, kept under the hash of its
-- request_uri until it is used once or expires; and clients that must push theirs.
ALTER TABLE clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0;

CREATE TABLE pushed_requests (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);

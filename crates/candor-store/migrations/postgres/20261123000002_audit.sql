-- The audit log: one row per token request (success or refusal) and per refused authorization
-- request. Facts never contain secrets (fingerprints only).
CREATE TABLE audit (
    trace_id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    endpoint TEXT NOT NULL,
    client_id TEXT,
    grant_type TEXT,
    reason TEXT,                          -- NULL for a success
    facts TEXT NOT NULL,                  -- JSON array of {name, value, disclosure}
    grant_id TEXT,
    encoding TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_grant ON audit (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX audit_rejections ON audit (client_id, at) WHERE reason IS NOT NULL;

CREATE INDEX codes_grant ON codes (grant_id);
CREATE INDEX codes_sweep ON codes (expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX interactions_expiry ON interactions (expires_at);

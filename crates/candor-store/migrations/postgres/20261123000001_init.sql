-- Candor's schema (PostgreSQL; the same tables as the SQLite schema). Secrets (codes, tokens, client secrets, session ids) are stored only as hashes.
-- Times are Unix seconds.

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,          -- JSON array
    grant_types TEXT NOT NULL,            -- JSON array
    auth_method TEXT NOT NULL,
    scopes TEXT NOT NULL,                 -- JSON array
    require_pkce BOOLEAN NOT NULL,
    allow_plain_pkce BOOLEAN NOT NULL,
    id_token_alg TEXT NOT NULL,
    always_issue_refresh_token BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT,
    email TEXT,
    email_verified BOOLEAN NOT NULL,
    disabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

-- Codes stay after redemption or expiry as tombstones, so a late presentation is diagnosed.
CREATE TABLE codes (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent BOOLEAN NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    auth_time BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    redeemed_trace TEXT,
    issued_trace TEXT NOT NULL
);
CREATE INDEX codes_pending ON codes (client_id, issued_at) WHERE redeemed_at IS NULL;

CREATE TABLE access_tokens (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_client ON access_tokens (client_id);
CREATE INDEX access_tokens_user ON access_tokens (user_id);

CREATE TABLE refresh_tokens (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    rotated_trace TEXT,
    revoked_at BIGINT,
    issued_trace TEXT NOT NULL
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE interactions (
    hash TEXT PRIMARY KEY,
    request TEXT NOT NULL,                -- JSON of the validated authorization request
    browser_hash TEXT NOT NULL,
    csrf_hash TEXT NOT NULL,
    login_user_id TEXT,
    login_time BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,                  -- one scope token per row
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, scope)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_der BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

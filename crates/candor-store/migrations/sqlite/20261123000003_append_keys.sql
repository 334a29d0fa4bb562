-- Codes and tokens issued from now on carry their time of issue, and their stored key (`hash`)
-- starts with it, so new rows arrive in key order. The three tables whose rows are looked up by
-- that key become WITHOUT ROWID tables: the row lives in the key's own B-tree, which now grows at
-- its right edge, instead of in a rowid table plus an index on a random key (one more page
-- written per row). Rows issued before keep their keys (the digest alone) and are found as before.
-- Tokens without a user (client credentials) no longer enter the index on user_id, and the
-- tokens' expiry indexes go: no query used them (the sweep looks for expired OR revoked rows, which
-- one index on expires_at cannot answer, so it scans), and every token paid a page for each.

CREATE TABLE codes_new (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent INTEGER NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    auth_time INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    redeemed_at INTEGER,
    redeemed_trace TEXT,
    issued_trace TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO codes_new SELECT hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_sent, scope, nonce,
    code_challenge, code_challenge_method, auth_time, issued_at, expires_at, redeemed_at, redeemed_trace, issued_trace
    FROM codes;
DROP TABLE codes;
ALTER TABLE codes_new RENAME TO codes;
CREATE INDEX codes_pending ON codes (client_id, issued_at) WHERE redeemed_at IS NULL;
CREATE INDEX codes_grant ON codes (grant_id);
CREATE INDEX codes_sweep ON codes (expires_at);

CREATE TABLE access_tokens_new (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
INSERT INTO access_tokens_new SELECT hash, grant_id, client_id, user_id, scope, issued_at, expires_at, revoked_at
    FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_client ON access_tokens (client_id);
CREATE INDEX access_tokens_user ON access_tokens (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE refresh_tokens_new (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    rotated_trace TEXT,
    revoked_at INTEGER,
    issued_trace TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO refresh_tokens_new SELECT hash, grant_id, client_id, user_id, scope, auth_time, issued_at, expires_at,
    rotated_at, rotated_trace, revoked_at, issued_trace
    FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Resource indicators (RFC 8707) and JWT access tokens (RFC 9068): the protected resources
-- tokens can be issued for, the resources each client may ask for, the resources of a grant
-- (kept by its code and its refresh tokens), and each access token's audience and format.
CREATE TABLE resources (
    id TEXT PRIMARY KEY,                  -- the resource indicator: an absolute URI
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,                 -- JSON array
    access_token_format TEXT NOT NULL,    -- opaque | jwt
    access_token_lifetime INTEGER,
    signing_alg TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'opaque';
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE codes ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE access_tokens ADD COLUMN audience TEXT;
ALTER TABLE access_tokens ADD COLUMN format TEXT NOT NULL DEFAULT 'opaque';
CREATE INDEX access_tokens_audience ON access_tokens (audience) WHERE audience IS NOT NULL;

-- private_key_jwt (RFC 7523, OIDC Core §9): the public keys a client signs its assertions with,
-- and the assertions already used, kept until they expire so that none is accepted twice.
ALTER TABLE clients ADD COLUMN jwks TEXT;  -- a JWK Set (JSON), public keys only

CREATE TABLE client_assertions (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);

-- DPoP (RFC 9449): the key a code, a refresh token family or an access token is bound to (its
-- JWK thumbprint), clients that must use DPoP, and the proofs already used (jti per key), kept
-- until they would be refused as stale anyway.
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE access_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;

CREATE TABLE dpop_proofs (
    jkt TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (jkt, jti)
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);

-- client_secret_jwt (RFC 7523, OIDC Core §9): the secret of such a client is the HMAC key of its
-- assertions, so it is kept sealed (AES-256-GCM under the operator's [client_assertion]
-- secret_key, bound to the client id) beside its hash. NULL for every other client.
ALTER TABLE clients ADD COLUMN secret_sealed TEXT;

-- Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): the hash of
-- the registration access token of a client registered at /register (NULL for the others,
-- which can only be managed with the command line).
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;

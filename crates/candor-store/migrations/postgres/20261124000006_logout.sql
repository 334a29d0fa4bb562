-- Logout (OpenID Connect RP-Initiated Logout 1.0 and Back-Channel Logout 1.0).
-- Per client: where the browser may be sent after logout, and where logout tokens are posted.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- A session's public id (the sid claim of its ID tokens and logout tokens; not a secret, unlike
-- the cookie whose hash keys the row). Sessions made before this migration have none.
ALTER TABLE sessions ADD COLUMN sid TEXT;
CREATE UNIQUE INDEX sessions_sid ON sessions (sid);
-- The session an interaction's login made or found, so the code it ends with names it.
ALTER TABLE interactions ADD COLUMN login_sid TEXT;
-- The session a code (and the refresh tokens of its grant) was issued in: its ID tokens carry
-- the sid, and logging out revokes the session's grants that are not offline_access.
ALTER TABLE codes ADD COLUMN sid TEXT;
CREATE INDEX codes_sid ON codes (sid) WHERE sid IS NOT NULL;
ALTER TABLE refresh_tokens ADD COLUMN sid TEXT;
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid) WHERE sid IS NOT NULL;

-- The clients a session signed in to (a code was issued to them in it): the ones told of its
-- logout. Rows of sessions that are gone are swept.
CREATE TABLE session_clients (
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);

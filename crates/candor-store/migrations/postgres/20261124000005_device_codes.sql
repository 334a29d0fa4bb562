-- The device authorization grant (RFC 8628): each device code (by hash) with its user code (by
-- hash, unique), the grant it will start, the polling state (the last two polls and the interval,
-- raised at each slow_down) and the user's decision. Kept as a tombstone after use or expiry.
CREATE TABLE device_codes (
    hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL DEFAULT '[]',
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    poll_interval BIGINT NOT NULL,
    last_polled_at BIGINT,
    previous_polled_at BIGINT,
    status TEXT NOT NULL,
    user_id TEXT,
    auth_time BIGINT,
    decided_at BIGINT,
    decided_trace TEXT,
    redeemed_at BIGINT,
    redeemed_trace TEXT,
    issued_trace TEXT NOT NULL
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
CREATE INDEX device_codes_client ON device_codes (client_id);

//! The statements of the request paths' write transactions, shared by both backends (PostgreSQL
//! runs them through sqlx, SQLite on its writer thread). Parameters are `$N`, which both accept;
//! the SQLite writer binds them by name, so their order in the text does not matter.

pub(crate) const INSERT_CODE: &str = "INSERT INTO codes (hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_sent, scope,
        nonce, code_challenge, code_challenge_method, auth_time, issued_at, expires_at, redeemed_at, redeemed_trace, issued_trace,
        resources, dpop_jkt, sid, session_ended_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
/// A code issued in a session records that the session signed in to its client (told at logout).
pub(crate) const SESSION_SIGNED_IN_TO: &str =
    "INSERT INTO session_clients (sid, client_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// The claim of a code: writers of one row are serialised (SQLite: one writer; PostgreSQL: the
/// row lock, and the WHERE is re-checked after a concurrent commit), so exactly one transaction
/// sees `redeemed_at IS NULL` and changes the row.
/// A code whose session was logged out of is not claimed either (see `END_SESSION_CODES`).
pub(crate) const CLAIM_CODE: &str = "UPDATE codes SET redeemed_at = $1, redeemed_trace = $2
     WHERE hash = $3 AND redeemed_at IS NULL AND session_ended_at IS NULL";
pub(crate) const CODE_REDEMPTION: &str =
    "SELECT redeemed_at, redeemed_trace, session_ended_at FROM codes WHERE hash = $1";

pub(crate) const INSERT_DEVICE_CODE: &str =
    "INSERT INTO device_codes (hash, user_code_hash, grant_id, client_id, scope,
        resources, issued_at, expires_at, poll_interval, last_polled_at, status, user_id, auth_time, decided_at,
        decided_trace, redeemed_at, redeemed_trace, issued_trace)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
/// A poll of a pending device code (RFC 8628 §3.5). The SET expressions read the row as it was
/// before the update (SQL, in both backends), so `previous_polled_at` gets the last poll, and
/// the interval grows by 5 (`device::SLOW_DOWN_STEP`) when this poll came before it had passed.
pub(crate) const POLL_DEVICE_CODE: &str =
    "UPDATE device_codes SET previous_polled_at = last_polled_at, last_polled_at = $1,
        poll_interval = CASE WHEN last_polled_at IS NOT NULL AND $1 - last_polled_at < poll_interval
                             THEN poll_interval + 5 ELSE poll_interval END
     WHERE hash = $2 AND status = 'pending'
     RETURNING previous_polled_at, poll_interval";
/// The user's decision, only while the authorization is pending and unexpired (one decision wins).
pub(crate) const DECIDE_DEVICE_CODE: &str = "UPDATE device_codes SET status = $1, user_id = $2, auth_time = $3,
        decided_at = $4, decided_trace = $5
     WHERE hash = $6 AND status = 'pending' AND expires_at > $4";
/// The claim of an approved device code (see `CLAIM_CODE`).
pub(crate) const CLAIM_DEVICE_CODE: &str = "UPDATE device_codes SET redeemed_at = $1, redeemed_trace = $2
     WHERE hash = $3 AND status = 'approved' AND redeemed_at IS NULL";
/// (A device code belongs to no browser session: it has no `session_ended_at`.)
pub(crate) const DEVICE_CODE_REDEMPTION: &str =
    "SELECT redeemed_at, redeemed_trace, CAST(NULL AS BIGINT) AS session_ended_at FROM device_codes WHERE hash = $1";

pub(crate) const INSERT_ACCESS: &str =
    "INSERT INTO access_tokens (hash, grant_id, client_id, user_id, scope, issued_at, expires_at, revoked_at,
        audience, format, dpop_jkt)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub(crate) const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (hash, grant_id, client_id, user_id, scope, auth_time, issued_at,
        expires_at, rotated_at, rotated_trace, revoked_at, issued_trace, resources, dpop_jkt, sid)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

pub(crate) const REFRESH_REVOKED_AT: &str = "SELECT revoked_at FROM refresh_tokens WHERE hash = $1";
/// The claim of a refresh token's rotation (see `CLAIM_CODE`).
pub(crate) const CLAIM_REFRESH: &str = "UPDATE refresh_tokens SET rotated_at = $1, rotated_trace = $2
     WHERE hash = $3 AND rotated_at IS NULL AND revoked_at IS NULL";
pub(crate) const REFRESH_ROTATION: &str =
    "SELECT rotated_at, rotated_trace, revoked_at FROM refresh_tokens WHERE hash = $1";

pub(crate) const INSERT_PUSHED_REQUEST: &str =
    "INSERT INTO pushed_requests (hash, client_id, params, expires_at) VALUES ($1, $2, $3, $4)";
pub(crate) const TAKE_PUSHED_REQUEST: &str =
    "UPDATE pushed_requests SET used_at = $1 WHERE hash = $2 AND used_at IS NULL
     RETURNING hash, client_id, params, expires_at";
pub(crate) const PUSHED_REQUEST_USED_AT: &str = "SELECT used_at FROM pushed_requests WHERE hash = $1";
pub(crate) const USE_CLIENT_ASSERTION: &str =
    "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub(crate) const USE_DPOP_PROOF: &str =
    "INSERT INTO dpop_proofs (jkt, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub(crate) const REVOKE_ACCESS_TOKEN: &str =
    "UPDATE access_tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL";
pub(crate) const REVOKE_GRANT: [&str; 2] = [
    "UPDATE access_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
];

pub(crate) const INSERT_SESSION: &str =
    "INSERT INTO sessions (hash, user_id, auth_time, created_at, expires_at, sid) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE hash = $1";

/// Logout: the session, gone (`$1`: its hash)...
pub(crate) const END_SESSION: &str = "DELETE FROM sessions WHERE hash = $1 RETURNING *";
/// ...the clients it signed in to (`$1`: its sid)...
pub(crate) const END_SESSION_CLIENTS: &str = "DELETE FROM session_clients WHERE sid = $1 RETURNING client_id";
/// ...its codes not yet redeemed, which no longer can be (`$1`: now, `$2`: its sid; before the
/// revocations, so that on PostgreSQL a redemption committing meanwhile is waited for and its
/// tokens are then revoked)...
pub(crate) const END_SESSION_CODES: &str =
    "UPDATE codes SET session_ended_at = $1 WHERE sid = $2 AND redeemed_at IS NULL AND session_ended_at IS NULL";
/// ...and the tokens of its grants that are not `offline_access` (OIDC Back-Channel Logout 1.0
/// §2.7: refresh tokens issued without it "SHOULD be revoked", those with it "normally SHOULD
/// NOT"): grants started by a code issued in the session, and refresh families that name it
/// (`$1`: now, `$2`: its sid).
pub(crate) const END_SESSION_REVOKE: [&str; 2] = [
    "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND grant_id IN (
        SELECT grant_id FROM codes WHERE sid = $2 AND (' ' || scope || ' ') NOT LIKE '% offline\\_access %' ESCAPE '\\'
        UNION SELECT grant_id FROM refresh_tokens WHERE sid = $2 AND (' ' || scope || ' ') NOT LIKE '% offline\\_access %' ESCAPE '\\')",
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND grant_id IN (
        SELECT grant_id FROM codes WHERE sid = $2 AND (' ' || scope || ' ') NOT LIKE '% offline\\_access %' ESCAPE '\\'
        UNION SELECT grant_id FROM refresh_tokens WHERE sid = $2 AND (' ' || scope || ' ') NOT LIKE '% offline\\_access %' ESCAPE '\\')",
];

pub(crate) const INSERT_INTERACTION: &str =
    "INSERT INTO interactions (hash, request, browser_hash, csrf_hash, login_user_id,
        login_time, created_at, expires_at, login_sid)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const RECORD_LOGIN: &str =
    "UPDATE interactions SET login_user_id = $1, login_time = $2, login_sid = $4 WHERE hash = $3";
pub(crate) const TAKE_INTERACTION: &str = "DELETE FROM interactions WHERE hash = $1";

pub(crate) const DELETE_CONSENT: &str = "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";
pub(crate) const REVOKE_CONSENTED_TOKENS: &str =
    "UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL";
pub(crate) const GRANT_CONSENT: &str =
    "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id, client_id, scope) DO NOTHING";

pub(crate) const INSERT_AUDIT: &str =
    "INSERT INTO audit (trace_id, at, endpoint, client_id, grant_type, reason, facts, grant_id, encoding)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (trace_id) DO UPDATE SET at = excluded.at, endpoint = excluded.endpoint,
         client_id = excluded.client_id, grant_type = excluded.grant_type, reason = excluded.reason,
         facts = excluded.facts, grant_id = excluded.grant_id, encoding = excluded.encoding";

// The reads of the request paths, one row (or a few) by key. On SQLite they run in place on the
// caller's thread (`reader.rs`), on PostgreSQL through the pool.
pub(crate) const CLIENT: &str = "SELECT * FROM clients WHERE id = $1";
pub(crate) const RESOURCE: &str = "SELECT * FROM resources WHERE id = $1";
pub(crate) const USER: &str = "SELECT * FROM users WHERE id = $1";
pub(crate) const USER_BY_USERNAME: &str = "SELECT * FROM users WHERE username = $1";
pub(crate) const CODE: &str = "SELECT * FROM codes WHERE hash = $1";
pub(crate) const DEVICE_CODE: &str = "SELECT * FROM device_codes WHERE hash = $1";
pub(crate) const DEVICE_CODE_BY_USER_CODE: &str = "SELECT * FROM device_codes WHERE user_code_hash = $1";
pub(crate) const ACCESS_TOKEN: &str = "SELECT * FROM access_tokens WHERE hash = $1";
pub(crate) const REFRESH_TOKEN: &str = "SELECT * FROM refresh_tokens WHERE hash = $1";
pub(crate) const SESSION: &str = "SELECT * FROM sessions WHERE hash = $1";
pub(crate) const INTERACTION: &str = "SELECT * FROM interactions WHERE hash = $1";
pub(crate) const CONSENT: &str = "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 ORDER BY scope";

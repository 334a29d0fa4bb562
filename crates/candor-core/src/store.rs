//! What the core needs from storage: one trait per aggregate, with its contract on each method.
//!
//! Implementations live in `candor-store` (SQLite; PostgreSQL later). Every method that changes
//! more than one row does so in one transaction; every write is durable when the call returns.

use crate::audit::AuditRecord;
use crate::clock::UnixTime;
use crate::model::*;
use async_trait::async_trait;

/// A storage failure. Its text goes to the log under the trace id, never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("a record with this key already exists: {0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn client(&self, id: &str) -> StoreResult<Option<Client>>;
    /// Inserts a new client; `Conflict` if the id is taken.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Replaces everything about the client but its id and creation time (RFC 7592 §2.2); its
    /// tokens stay. Returns false if it does not exist.
    async fn update_client(&self, client: &Client) -> StoreResult<bool>;
    /// Removes the client and revokes everything issued to it. Returns false if it did not exist.
    async fn remove_client(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Replaces the stored secret hash. Returns false if the client does not exist.
    async fn set_client_secret(&self, id: &str, secret_hash: &str) -> StoreResult<bool>;
    /// Records a client assertion's `jti` as used until `expires_at` (RFC 7523 §3). Returns
    /// false, recording nothing, if this client already used it: of concurrent calls with one
    /// `jti`, on any node, exactly one returns true.
    async fn use_client_assertion(&self, client_id: &str, jti: &str, expires_at: UnixTime) -> StoreResult<bool>;
}

/// The protected resources (RFC 8707) tokens can be issued for.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    async fn resource(&self, id: &str) -> StoreResult<Option<Resource>>;
    /// Inserts a new resource; `Conflict` if the indicator is taken.
    async fn insert_resource(&self, resource: &Resource) -> StoreResult<()>;
    async fn list_resources(&self) -> StoreResult<Vec<Resource>>;
    /// Removes the resource, takes it off every client's list and revokes the tokens issued for
    /// it. Returns false if it did not exist.
    async fn remove_resource(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Inserts a new user; `Conflict` if the username is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn set_password(&self, id: &str, password_hash: &str) -> StoreResult<bool>;
    /// Disabling also ends the user's sessions.
    async fn set_disabled(&self, id: &str, disabled: bool) -> StoreResult<bool>;
    /// Removes the user, their sessions and consents, and revokes their tokens.
    async fn remove_user(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
}

/// The outcome of an attempt to redeem a code.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// This call redeemed the code, and the tokens were stored in the same transaction.
    Redeemed,
    /// Another redemption won (before or concurrently); nothing was stored by this call.
    AlreadyRedeemed { redeemed_at: UnixTime, redeemed_trace: Option<String> },
    /// The session the code was issued in was logged out of first; nothing was stored.
    SessionEnded { at: UnixTime },
    /// No such code.
    Missing,
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()>;
    /// The code with this hash, redeemed or not (tombstones included).
    async fn code(&self, hash: &str) -> StoreResult<Option<CodeRecord>>;
    /// Atomically: marks the code redeemed if (and only if) it is not yet, and stores `issued`.
    /// Of any number of concurrent calls for one code, exactly one returns `Redeemed`.
    async fn redeem_code(
        &self,
        hash: &str,
        now: UnixTime,
        trace: &str,
        issued: &IssuedTokens,
    ) -> StoreResult<Redemption>;
    /// The code a grant started from, if the grant started from a code (and it is not swept).
    async fn code_by_grant(&self, grant_id: &str) -> StoreResult<Option<CodeRecord>>;
    /// Pending (unredeemed, unexpired) codes of a client, newest first, at most `limit`.
    async fn pending_codes(&self, client_id: &str, now: UnixTime, limit: u32) -> StoreResult<Vec<CodeRecord>>;
}

/// Device authorizations (RFC 8628), from the request to the exchange of their device code.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new device authorization; `Conflict` if its user code is taken (draw another).
    async fn insert_device_code(&self, record: &DeviceCodeRecord) -> StoreResult<()>;
    /// The device authorization of this device code hash, in any state (tombstones included).
    async fn device_code(&self, hash: &str) -> StoreResult<Option<DeviceCodeRecord>>;
    /// The device authorization of this user code hash, in any state.
    async fn device_code_by_user_code(&self, user_code_hash: &str) -> StoreResult<Option<DeviceCodeRecord>>;
    /// Records a poll of a pending device code at `now`, and atomically raises its interval by
    /// `device::SLOW_DOWN_STEP` if the poll came sooner than the interval after the previous one
    /// (RFC 8628 §3.5). `None` if the code is unknown or no longer pending.
    async fn poll_device_code(&self, hash: &str, now: UnixTime) -> StoreResult<Option<crate::device::Poll>>;
    /// Records the user's decision if the authorization is still pending and unexpired at `now`.
    /// Of concurrent decisions, exactly one returns true.
    async fn decide_device_code(
        &self,
        hash: &str,
        decision: &crate::device::Decision,
        now: UnixTime,
        trace: &str,
    ) -> StoreResult<bool>;
    /// Atomically: marks an approved device code redeemed if it is not yet, and stores `issued`.
    /// Of concurrent calls for one code, exactly one returns `Redeemed`.
    async fn redeem_device_code(
        &self,
        hash: &str,
        now: UnixTime,
        trace: &str,
        issued: &IssuedTokens,
    ) -> StoreResult<Redemption>;
}

/// The outcome of an attempt to rotate a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// This call rotated the token; the new tokens are stored.
    Rotated,
    /// The token was already rotated (by `rotated_trace` at `rotated_at`); nothing was stored.
    AlreadyRotated {
        rotated_at: UnixTime,
        rotated_trace: Option<String>,
    },
    /// The token or its family was revoked.
    Revoked,
    Missing,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn access_token(&self, hash: &str) -> StoreResult<Option<AccessTokenRecord>>;
    async fn refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Stores tokens issued without a code (client credentials).
    async fn insert_tokens(&self, issued: &IssuedTokens) -> StoreResult<()>;
    /// Within the reuse grace: stores tokens minted from an already rotated refresh token, in the
    /// same family, if (atomically, against concurrent revocations of the family) that token is
    /// not revoked. Returns false, storing nothing, if it is revoked or gone.
    async fn insert_sibling(&self, rotated_hash: &str, issued: &IssuedTokens) -> StoreResult<bool>;
    /// Atomically: marks the refresh token rotated if it is neither rotated nor revoked, and
    /// stores `issued`. Of concurrent calls for one token, exactly one returns `Rotated`.
    async fn rotate_refresh_token(
        &self,
        hash: &str,
        now: UnixTime,
        trace: &str,
        issued: &IssuedTokens,
    ) -> StoreResult<Rotation>;
    /// Every access and refresh token of a grant, oldest first.
    async fn tokens_of_grant(&self, grant_id: &str) -> StoreResult<(Vec<AccessTokenRecord>, Vec<RefreshTokenRecord>)>;
    /// Revokes every access and refresh token of a grant (a code's tokens, a refresh family).
    /// Returns how many tokens were newly revoked.
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64>;
    /// Revokes one access token (RFC 7009). Returns false if it is unknown or already revoked.
    async fn revoke_access_token(&self, hash: &str, now: UnixTime) -> StoreResult<bool>;
    /// Records a DPoP proof's `jti` as used with the key `jkt` until `expires_at` (RFC 9449
    /// §11.1). Returns false, recording nothing, if it was used before: of concurrent calls with
    /// one proof, on any node, exactly one returns true.
    async fn use_dpop_proof(&self, jkt: &str, jti: &str, expires_at: UnixTime) -> StoreResult<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn session(&self, hash: &str) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, hash: &str) -> StoreResult<()>;
    /// Logout, in one transaction: deletes the session, forgets the clients it signed in to
    /// (returned, to be told) and revokes the tokens of its grants that are not
    /// `offline_access`. `None` if there was no such session (ended already, elsewhere).
    async fn end_session(&self, hash: &str, now: UnixTime) -> StoreResult<Option<EndedSession>>;
}

/// A session that logout ended.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedSession {
    pub session: SessionRecord,
    /// The clients a code was issued to in the session, in no particular order.
    pub clients: Vec<String>,
    /// Access and refresh tokens newly revoked with it.
    pub tokens_revoked: u64,
}

#[async_trait]
pub trait InteractionStore: Send + Sync {
    async fn insert_interaction(&self, interaction: &InteractionRecord) -> StoreResult<()>;
    async fn interaction(&self, hash: &str) -> StoreResult<Option<InteractionRecord>>;
    /// Records that the user logged in during the interaction, in the session `sid`.
    async fn record_login(&self, hash: &str, user_id: &str, at: UnixTime, sid: Option<&str>) -> StoreResult<()>;
    /// Deletes the interaction; returns false if it was already gone (completed elsewhere).
    async fn take_interaction(&self, hash: &str) -> StoreResult<bool>;
    async fn insert_pushed_request(&self, pushed: &PushedRequest) -> StoreResult<()>;
    /// Marks the pushed request used at `now` and returns it; of concurrent calls exactly one
    /// gets it (RFC 9126 §4: one-time use). A used one is kept, for diagnosis, until it expires.
    async fn take_pushed_request(&self, hash: &str, now: UnixTime) -> StoreResult<Taking>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes the user has granted the client (empty if none).
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Vec<String>>;
    /// Withdraws all of the user's consent for the client and revokes the client's access tokens
    /// for the user. Refresh tokens stay, so their next use is refused as `consent_revoked`
    /// (precise) and then revoked. Returns false if there was no consent.
    async fn revoke_consent(&self, user_id: &str, client_id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Adds scopes to the user's consent for the client.
    async fn grant_consent(&self, user_id: &str, client_id: &str, scopes: &[String], now: UnixTime) -> StoreResult<()>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// All keys, newest first.
    async fn keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Inserts a new key and retires the previous active key of the same algorithm, atomically.
    async fn add_key(&self, key: &SigningKeyRecord, now: UnixTime) -> StoreResult<()>;
    /// Deletes retired keys retired before `before`.
    async fn remove_retired_keys(&self, before: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends a record; durable when the call returns.
    async fn record_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    async fn audit(&self, trace_id: &str) -> StoreResult<Option<AuditRecord>>;
    /// The records of requests that concerned a grant, oldest first.
    async fn audit_by_grant(&self, grant_id: &str) -> StoreResult<Vec<AuditRecord>>;
    /// Recent refused requests, newest first, optionally of one client and/or one reason.
    async fn recent_rejections(
        &self,
        client_id: Option<&str>,
        reason: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// Refusals since `since`, counted by client and reason, largest first.
    async fn rejection_counts(&self, since: UnixTime) -> StoreResult<Vec<(Option<String>, String, i64)>>;
}

/// What taking a pushed request found.
#[derive(Debug, Clone, PartialEq)]
pub enum Taking {
    Taken(PushedRequest),
    /// Used before, at this time.
    AlreadyUsed {
        used_at: UnixTime,
    },
    /// Never issued, or swept after its expiry.
    Missing,
}

/// How many rows one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub codes: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub interactions: u64,
    pub audit: u64,
    /// Used client assertions past their expiry (their `jti` need not be remembered any more).
    pub client_assertions: u64,
    /// Pushed authorization requests past their expiry, never used.
    pub pushed_requests: u64,
    /// Used DPoP proofs past the time they would be refused as stale.
    pub dpop_proofs: u64,
    /// Device authorizations expired more than the tombstone retention ago.
    pub device_codes: u64,
    /// The records of which clients a session signed in to, once the session is gone.
    pub session_clients: u64,
}

impl Swept {
    /// The counts in the order of the fields (the order in which a store sweeps them).
    pub fn counts(&self) -> [u64; 11] {
        [
            self.codes,
            self.access_tokens,
            self.refresh_tokens,
            self.sessions,
            self.interactions,
            self.audit,
            self.client_assertions,
            self.pushed_requests,
            self.dpop_proofs,
            self.device_codes,
            self.session_clients,
        ]
    }

    pub fn total(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// The rows of two sweeps together.
    pub fn plus(&self, other: &Swept) -> Swept {
        let (a, b) = (self.counts(), other.counts());
        Swept::from(std::array::from_fn(|i| a[i] + b[i]))
    }

    /// Whether some kind of record filled its batch: there may be more to remove right away.
    pub fn filled(&self, batch: u32) -> bool {
        self.counts().iter().any(|n| *n >= u64::from(batch))
    }
}

impl From<[u64; 11]> for Swept {
    /// Counts in the order of `counts()`.
    fn from(
        [
            codes,
            access_tokens,
            refresh_tokens,
            sessions,
            interactions,
            audit,
            client_assertions,
            pushed_requests,
            dpop_proofs,
            device_codes,
            session_clients,
        ]: [u64; 11],
    ) -> Swept {
        Swept {
            codes,
            access_tokens,
            refresh_tokens,
            sessions,
            interactions,
            audit,
            client_assertions,
            pushed_requests,
            dpop_proofs,
            device_codes,
            session_clients,
        }
    }
}

/// What one sweep removes, and how much at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    pub now: UnixTime,
    /// How long dead codes and tokens stay as tombstones (they keep diagnoses precise).
    pub tombstone_retention: i64,
    pub audit_retention: i64,
    /// At most this many rows per kind of record.
    pub batch: u32,
    /// The longest lifetime an access token (a refresh token's family) has been issued with, when
    /// known. Tokens' keys start with their time of issue, so the sweep then walks only the keys
    /// of tokens issued more than lifetime + retention ago, all of them dead, instead of every
    /// token issued before the retention horizon (an hour of access tokens at the default
    /// lifetime, read again at every sweep). A token that dies sooner (revoked, or issued with a
    /// shorter lifetime) is removed when its key enters that range.
    pub access_token_lifetime: Option<i64>,
    pub refresh_token_lifetime: Option<i64>,
}

impl SweepPolicy {
    /// A sweep of every kind of record, walking the token tables up to the retention horizon.
    pub fn new(now: UnixTime, tombstone_retention: i64, audit_retention: i64, batch: u32) -> SweepPolicy {
        SweepPolicy {
            now,
            tombstone_retention,
            audit_retention,
            batch,
            access_token_lifetime: None,
            refresh_token_lifetime: None,
        }
    }

    /// The same sweep, knowing the longest lifetimes tokens were issued with.
    pub fn with_token_lifetimes(self, access: i64, refresh: i64) -> SweepPolicy {
        SweepPolicy { access_token_lifetime: Some(access), refresh_token_lifetime: Some(refresh), ..self }
    }
}

#[async_trait]
pub trait SweepStore: Send + Sync {
    /// Removes at most `policy.batch` rows per kind of record that are dead and older than their
    /// retention: codes redeemed or expired, and tokens expired, rotated or revoked, more than
    /// `tombstone_retention` seconds ago (until then they are tombstones that keep diagnoses
    /// precise); sessions and interactions past their expiry; audit records older than
    /// `audit_retention`; used client assertions, used DPoP proofs and unused pushed requests past
    /// their expiry; device authorizations `tombstone_retention` after their expiry. Safe to run
    /// concurrently from several nodes: each statement deletes a bounded set of rows.
    async fn sweep(&self, policy: &SweepPolicy) -> StoreResult<Swept>;
}

/// Everything Candor stores.
pub trait Store:
    ClientStore
    + ResourceStore
    + UserStore
    + CodeStore
    + DeviceStore
    + TokenStore
    + SessionStore
    + InteractionStore
    + ConsentStore
    + KeyStore
    + AuditStore
    + SweepStore
{
}

impl<T> Store for T where
    T: ClientStore
        + ResourceStore
        + UserStore
        + CodeStore
        + DeviceStore
        + TokenStore
        + SessionStore
        + InteractionStore
        + ConsentStore
        + KeyStore
        + AuditStore
        + SweepStore
{
}

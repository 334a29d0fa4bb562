//! The protocol settings every rule reads: issuer and lifetimes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The issuer identifier (OIDC Discovery §3): an https URL (http only for loopback in dev).
    pub issuer: String,
    /// Authorization code lifetime in seconds (RFC 6749 §4.1.2: at most 10 minutes).
    pub code_lifetime: i64,
    pub access_token_lifetime: i64,
    /// Absolute lifetime of a refresh token family; rotation does not extend it.
    pub refresh_token_lifetime: i64,
    pub id_token_lifetime: i64,
    /// How long the login/consent step may take.
    pub interaction_lifetime: i64,
    pub session_lifetime: i64,
    /// Seconds after a rotation during which the old refresh token may still be used once more
    /// without revoking its family (a benign race); 0 turns reuse detection on immediately.
    pub refresh_reuse_grace: i64,
    /// How long redeemed/expired codes and dead tokens stay as hashed tombstones, so a late
    /// presentation is still diagnosed precisely (`code_already_redeemed`, not `code_unknown`).
    pub tombstone_retention: i64,
    /// How long audit records (the input of `candor explain`) are kept.
    pub audit_retention: i64,
    /// Seconds between reloads of the signing keys from the store, so a key rotated on one node
    /// is used and published by every node within this time.
    pub key_reload_interval: i64,
    /// Failed logins for one username before each next attempt has to wait (1 s, then doubling).
    pub login_free_failures: u32,
    /// Failed logins from one client address (any usernames) before the same.
    pub login_address_free_failures: u32,
    /// The longest wait a throttled login is asked for, in seconds.
    pub login_max_delay: i64,
    /// Proxies (addresses or CIDR prefixes) whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: Vec<String>,
    /// Token requests per second each client may make, sustained (0: no limit).
    pub token_rate: u32,
    /// How many token requests a client may make at once (0: as many as `token_rate`).
    pub token_burst: u32,
    /// Seconds of clock difference tolerated on a client assertion's `exp`, `iat` and `nbf`
    /// (private_key_jwt); a larger difference is refused and reported in seconds.
    pub client_assertion_leeway: i64,
    /// The key (32 bytes, base64) that seals `client_secret_jwt` clients' secrets in the store
    /// (`sealed.rs`); without it that method is not offered.
    pub client_secret_key: Option<String>,
    /// Seconds a DPoP proof's `iat` may lie from the server's time, either way (RFC 9449 §4.3).
    pub dpop_leeway: i64,
    /// DPoP proofs must carry the server's nonce (RFC 9449 §8).
    pub dpop_nonce: bool,
    /// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`).
    pub device_code_lifetime: i64,
    /// Seconds a device must wait between polls at first (RFC 8628 §3.2 `interval`).
    pub device_poll_interval: i64,
    /// Dynamic client registration (RFC 7591, RFC 7592); off by default.
    pub registration: RegistrationSettings,
}

/// Who may register clients at the registration endpoint, and what they may register.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrationSettings {
    /// The registration endpoint is served and advertised.
    pub enabled: bool,
    /// Hash of the initial access token (RFC 7591 §3) a registration must carry; `None`: open
    /// registration.
    pub initial_token_hash: Option<String>,
    /// A registration may set `backchannel_logout_uri`. Off by default: Candor posts to the
    /// host that URI names, so an open registration could make it reach internal addresses.
    pub backchannel_logout: bool,
}

/// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
pub const MAX_CODE_LIFETIME: i64 = 600;

impl Settings {
    pub fn new(issuer: impl Into<String>) -> Settings {
        Settings {
            issuer: issuer.into(),
            code_lifetime: 60,
            access_token_lifetime: 3600,
            refresh_token_lifetime: 30 * 24 * 3600,
            id_token_lifetime: 3600,
            interaction_lifetime: 600,
            session_lifetime: 8 * 3600,
            refresh_reuse_grace: 0,
            tombstone_retention: 24 * 3600,
            audit_retention: 7 * 24 * 3600,
            key_reload_interval: 10,
            login_free_failures: 5,
            login_address_free_failures: 20,
            login_max_delay: 900,
            trusted_proxies: Vec::new(),
            token_rate: 0,
            token_burst: 0,
            client_assertion_leeway: 60,
            client_secret_key: None,
            dpop_leeway: 60,
            dpop_nonce: false,
            device_code_lifetime: 600,
            device_poll_interval: 5,
            registration: RegistrationSettings::default(),
        }
    }

    /// Checks the settings; each error names the setting and the problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CODE_LIFETIME).contains(&self.code_lifetime) {
            return Err(format!("code_lifetime: {} is outside 1..={MAX_CODE_LIFETIME} seconds", self.code_lifetime));
        }
        for (name, v) in [
            ("access_token_lifetime", self.access_token_lifetime),
            ("refresh_token_lifetime", self.refresh_token_lifetime),
            ("id_token_lifetime", self.id_token_lifetime),
            ("interaction_lifetime", self.interaction_lifetime),
            ("session_lifetime", self.session_lifetime),
            ("tombstone_retention", self.tombstone_retention),
            ("audit_retention", self.audit_retention),
        ] {
            if v < 1 {
                return Err(format!("{name}: must be at least 1 second, got {v}"));
            }
        }
        if !(0..=300).contains(&self.refresh_reuse_grace) {
            return Err(format!("refresh_reuse_grace: {} is outside 0..=300 seconds", self.refresh_reuse_grace));
        }
        if self.login_free_failures < 1 {
            return Err("login_free_failures: must be at least 1".into());
        }
        if self.login_address_free_failures < 1 {
            return Err("login_address_free_failures: must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.login_max_delay) {
            return Err(format!("login_max_delay: {} is outside 1..=86400 seconds", self.login_max_delay));
        }
        for (name, v) in [("token_rate", self.token_rate), ("token_burst", self.token_burst)] {
            if v > 1_000_000 {
                return Err(format!("{name}: {v} is above 1000000"));
            }
        }
        if let Some(key) = &self.client_secret_key {
            crate::sealed::SealingKey::parse(key).map_err(|e| format!("client_secret_key: {e}"))?;
        }
        if !(0..=600).contains(&self.client_assertion_leeway) {
            return Err(format!(
                "client_assertion_leeway: {} is outside 0..=600 seconds",
                self.client_assertion_leeway
            ));
        }
        if !(1..=600).contains(&self.dpop_leeway) {
            return Err(format!("dpop_leeway: {} is outside 1..=600 seconds", self.dpop_leeway));
        }
        if !(60..=3600).contains(&self.device_code_lifetime) {
            return Err(format!("device_code_lifetime: {} is outside 60..=3600 seconds", self.device_code_lifetime));
        }
        if !(1..=60).contains(&self.device_poll_interval) {
            return Err(format!("device_poll_interval: {} is outside 1..=60 seconds", self.device_poll_interval));
        }
        crate::net::TrustedProxies::parse(&self.trusted_proxies).map_err(|e| format!("trusted_proxies: {e}"))?;
        if !(1..=3600).contains(&self.key_reload_interval) {
            return Err(format!("key_reload_interval: {} is outside 1..=3600 seconds", self.key_reload_interval));
        }
        let url = url::Url::parse(&self.issuer).map_err(|e| format!("issuer: {e}"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err("issuer: must not have a query or fragment (OIDC Discovery §3)".into());
        }
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(format!("issuer: scheme {:?} is not http(s)", url.scheme()));
        }
        Ok(())
    }

    /// The issuer without a trailing slash, for building endpoint URLs.
    pub fn base(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}

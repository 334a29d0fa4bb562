//! The server's shared state: store, settings, clock, signing keys.

use candor_core::clock::Clock;
use candor_core::keys::{KeyError, KeyRing, generate};
use candor_core::model::SigningAlg;
use candor_core::settings::Settings;
use candor_core::store::{Store, StoreError};
use std::sync::{Arc, RwLock};

/// How much a rejection tells the party that sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    /// Reason, sentence and every fact, stored values included (the default of `candor dev`).
    Detailed,
    /// Reason and sentence, public facts only; no stored values (the default of `candor serve`).
    Standard,
}

impl Disclosure {
    pub fn parse(s: &str) -> Option<Disclosure> {
        match s {
            "detailed" => Some(Disclosure::Detailed),
            "standard" => Some(Disclosure::Standard),
            _ => None,
        }
    }

    pub fn is_detailed(self) -> bool {
        self == Disclosure::Detailed
    }
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub disclosure: Disclosure,
    /// Cookies get `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// Hash of the admin API token; `None` turns the admin API off.
    pub admin_token_hash: Option<String>,
    pub metrics: Arc<crate::metrics::Metrics>,
    keys: RwLock<Arc<KeyRing>>,
    /// argon2 verifications, one thread per core (see `passwords.rs`).
    passwords: crate::passwords::Verifier,
    /// Failed logins by username and by client address (`throttle.rs`).
    pub throttle: crate::throttle::Throttle,
    /// `settings.trusted_proxies`, parsed.
    pub proxies: candor_core::net::TrustedProxies,
    /// Token requests per client (`ratelimit.rs`).
    pub rate_limits: crate::ratelimit::RateLimits,
    /// The HTTP client of back-channel logout (`logout.rs`): no redirects, a bounded wait.
    pub outbound: reqwest::Client,
    /// `settings.client_secret_key`, parsed: `client_secret_jwt` is offered only with it.
    pub sealing: Option<candor_core::sealed::SealingKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("settings: {0}")]
    Settings(String),
}

impl AppState {
    /// Builds the state, generating signing keys on first start.
    pub async fn new(
        store: Arc<dyn Store>,
        settings: Settings,
        clock: Arc<dyn Clock>,
        disclosure: Disclosure,
    ) -> Result<Arc<AppState>, StartError> {
        AppState::with_admin_token(store, settings, clock, disclosure, None).await
    }

    /// As `new`, with the admin API enabled for `admin_token` (at least 32 characters).
    pub async fn with_admin_token(
        store: Arc<dyn Store>,
        settings: Settings,
        clock: Arc<dyn Clock>,
        disclosure: Disclosure,
        admin_token: Option<&str>,
    ) -> Result<Arc<AppState>, StartError> {
        if admin_token.is_some_and(|t| t.len() < 32) {
            return Err(StartError::Settings("admin_token: at least 32 characters".into()));
        }
        settings.validate().map_err(StartError::Settings)?;
        let proxies = candor_core::net::TrustedProxies::parse(&settings.trusted_proxies)
            .map_err(|e| StartError::Settings(format!("trusted_proxies: {e}")))?;
        ensure_keys(store.as_ref(), clock.now()).await?;
        let ring = KeyRing::from_records(&store.keys().await?)?;
        let secure_cookies = settings.issuer.starts_with("https://");
        let sealing = match &settings.client_secret_key {
            Some(k) => Some(
                candor_core::sealed::SealingKey::parse(k)
                    .map_err(|e| StartError::Settings(format!("client_secret_key: {e}")))?,
            ),
            None => None,
        };
        Ok(Arc::new(AppState {
            store,
            settings,
            clock,
            disclosure,
            secure_cookies,
            admin_token_hash: admin_token.map(candor_core::tokens::hash_secret),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            keys: RwLock::new(Arc::new(ring)),
            passwords: crate::passwords::Verifier::start(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            ),
            throttle: crate::throttle::Throttle::default(),
            proxies,
            rate_limits: crate::ratelimit::RateLimits::default(),
            outbound: crate::logout::http_client()
                .map_err(|e| StartError::Settings(format!("outbound HTTP client: {e}")))?,
            sealing,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The keys in force (cheap: an `Arc` clone).
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Verifies a password against a stored argon2 hash, off the async threads, one per core at a time.
    pub async fn verify_password(&self, password: String, stored: String) -> bool {
        self.passwords.verify(password, stored).await
    }

    /// What presented JWTs are checked against: these keys and this provider's issuer.
    pub fn issuer<'a>(&'a self, keys: &'a KeyRing) -> candor_core::access_token::Issuer<'a> {
        candor_core::access_token::Issuer { keys, issuer: &self.settings.issuer }
    }

    /// Re-reads keys from the store, so a rotation made by `candor key rotate` (or another
    /// node) is picked up. Called periodically by the server.
    pub async fn reload_keys(&self) -> Result<(), StartError> {
        let records = self.store.keys().await?;
        // Parse keys only when the set changed: parsing an RSA key is the costly part.
        if self.keys().same_keys(&records) {
            return Ok(());
        }
        let ring = KeyRing::from_records(&records)?;
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        Ok(())
    }
}

/// Creates a signing key for every algorithm that has no active one.
pub async fn ensure_keys(store: &dyn Store, now: i64) -> Result<(), StartError> {
    let existing = store.keys().await?;
    for alg in SigningAlg::ALL {
        if !existing.iter().any(|k| k.alg == alg && k.retired_at.is_none()) {
            store.add_key(&generate(alg, now)?, now).await?;
        }
    }
    Ok(())
}

/// Adds a new key for each algorithm (or one); the old ones stay published until their tokens expire.
pub async fn rotate_keys(store: &dyn Store, algs: &[SigningAlg], now: i64) -> Result<Vec<String>, StartError> {
    let mut kids = Vec::new();
    for alg in algs {
        let key = generate(*alg, now)?;
        store.add_key(&key, now).await?;
        kids.push(key.kid);
    }
    Ok(kids)
}

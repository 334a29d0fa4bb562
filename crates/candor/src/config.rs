//! `candor.toml`: the production configuration, with `CANDOR_*` environment overrides.

use candor_core::settings::Settings;
use candor_server::Disclosure;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer URL, exactly as clients will see it (https outside loopback).
    pub issuer: String,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Store URL: `sqlite://path/to/candor.db` or `postgres://user@host/db` (several nodes).
    #[serde(default = "default_store")]
    pub store: String,
    /// `standard` (default) or `detailed`.
    #[serde(default = "default_disclosure")]
    pub disclosure: String,
    /// Token for the admin API (`/admin/...`); the admin API is off without it. At least 32 characters.
    #[serde(default)]
    pub admin_token: Option<String>,
    #[serde(default)]
    pub lifetimes: Lifetimes,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub keys: Keys,
    #[serde(default)]
    pub login: Login,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub client_assertion: ClientAssertion,
    #[serde(default)]
    pub dpop: Dpop,
    #[serde(default)]
    pub device: Device,
    #[serde(default)]
    pub registration: Registration,
    /// Proxies (addresses or CIDR prefixes, e.g. the load balancer's subnet) whose
    /// `X-Forwarded-For` names the client's address; empty: the connection's peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub log: Log,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Login {
    /// Failed logins for one username before each next attempt must wait (1 s, then doubling).
    pub free_failures: u32,
    /// The same, for failed logins from one client address under any usernames.
    pub address_free_failures: u32,
    /// The longest wait, in seconds.
    pub max_delay: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Token requests per second each client may make, sustained (0: no limit).
    pub token_rate: u32,
    /// How many it may make at once (0: as many as `token_rate`).
    pub token_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAssertion {
    /// Seconds of clock difference tolerated on a private_key_jwt assertion's exp, iat and nbf.
    pub leeway: i64,
    /// 32 bytes, base64: seals the secrets of client_secret_jwt clients, which are offered only
    /// with it. Keep it outside the store (CANDOR_CLIENT_ASSERTION_SECRET_KEY).
    pub secret_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dpop {
    /// Seconds a DPoP proof's iat may lie from the server's time, either way.
    pub leeway: i64,
    /// Require the server's nonce in DPoP proofs (RFC 9449 §8).
    pub nonce: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Device {
    /// Seconds a device code and its user code live (RFC 8628 `expires_in`).
    pub code_lifetime: i64,
    /// Seconds a device waits between polls at first (RFC 8628 `interval`).
    pub poll_interval: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Registration {
    /// Serve dynamic client registration (RFC 7591, RFC 7592) at /register.
    pub enabled: bool,
    /// A registration must carry this as `Authorization: Bearer` (at least 32 characters);
    /// without it, anyone who can reach Candor can register a client.
    pub initial_access_token: Option<String>,
    /// A registration may set `backchannel_logout_uri` (Candor then posts to whatever host it names).
    pub backchannel_logout: bool,
}

impl Default for Device {
    fn default() -> Self {
        let s = Settings::new("http://x");
        Device { code_lifetime: s.device_code_lifetime, poll_interval: s.device_poll_interval }
    }
}

impl Default for Dpop {
    fn default() -> Self {
        let s = Settings::new("http://x");
        Dpop { leeway: s.dpop_leeway, nonce: s.dpop_nonce }
    }
}

impl Default for ClientAssertion {
    fn default() -> Self {
        ClientAssertion { leeway: Settings::new("http://x").client_assertion_leeway, secret_key: None }
    }
}

impl Default for Login {
    fn default() -> Self {
        let s = Settings::new("http://x");
        Login {
            free_failures: s.login_free_failures,
            address_free_failures: s.login_address_free_failures,
            max_delay: s.login_max_delay,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keys {
    /// Seconds between reloads of the signing keys from the store (a rotation made by another
    /// node or by `candor key rotate` is in use everywhere within this time).
    pub reload_interval: i64,
}

impl Default for Keys {
    fn default() -> Self {
        Keys { reload_interval: Settings::new("http://x").key_reload_interval }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifetimes {
    pub code: i64,
    pub access_token: i64,
    pub refresh_token: i64,
    pub id_token: i64,
    pub session: i64,
    pub interaction: i64,
    /// Seconds a rotated refresh token may still be used (a benign race) before reuse revokes the family.
    pub refresh_reuse_grace: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        let s = Settings::new("http://x");
        Lifetimes {
            code: s.code_lifetime,
            access_token: s.access_token_lifetime,
            refresh_token: s.refresh_token_lifetime,
            id_token: s.id_token_lifetime,
            session: s.session_lifetime,
            interaction: s.interaction_lifetime,
            refresh_reuse_grace: s.refresh_reuse_grace,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Seconds redeemed/expired codes and dead tokens stay as hashed tombstones.
    pub tombstones: i64,
    /// Seconds audit records (what `candor explain` reads) are kept.
    pub audit: i64,
}

impl Default for Retention {
    fn default() -> Self {
        let s = Settings::new("http://x");
        Retention { tombstones: s.tombstone_retention, audit: s.audit_retention }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `candor=debug`.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { format: "text".into(), level: "info".into() }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_store() -> String {
    "sqlite://candor.db".into()
}
fn default_disclosure() -> String {
    "standard".into()
}

/// Every key that may be overridden from the environment: `CANDOR_ISSUER`, `CANDOR_LIFETIMES_CODE`...
const KEYS: &[(&str, &[&str], bool)] = &[
    ("CANDOR_ISSUER", &["issuer"], false),
    ("CANDOR_LISTEN", &["listen"], false),
    ("CANDOR_STORE", &["store"], false),
    ("CANDOR_DISCLOSURE", &["disclosure"], false),
    ("CANDOR_ADMIN_TOKEN", &["admin_token"], false),
    ("CANDOR_RETENTION_TOMBSTONES", &["retention", "tombstones"], true),
    ("CANDOR_RETENTION_AUDIT", &["retention", "audit"], true),
    ("CANDOR_LIFETIMES_CODE", &["lifetimes", "code"], true),
    ("CANDOR_LIFETIMES_ACCESS_TOKEN", &["lifetimes", "access_token"], true),
    ("CANDOR_LIFETIMES_REFRESH_TOKEN", &["lifetimes", "refresh_token"], true),
    ("CANDOR_LIFETIMES_ID_TOKEN", &["lifetimes", "id_token"], true),
    ("CANDOR_LIFETIMES_SESSION", &["lifetimes", "session"], true),
    ("CANDOR_LIFETIMES_INTERACTION", &["lifetimes", "interaction"], true),
    ("CANDOR_LIFETIMES_REFRESH_REUSE_GRACE", &["lifetimes", "refresh_reuse_grace"], true),
    ("CANDOR_KEYS_RELOAD_INTERVAL", &["keys", "reload_interval"], true),
    ("CANDOR_LOGIN_FREE_FAILURES", &["login", "free_failures"], true),
    ("CANDOR_LOGIN_ADDRESS_FREE_FAILURES", &["login", "address_free_failures"], true),
    ("CANDOR_LOGIN_MAX_DELAY", &["login", "max_delay"], true),
    ("CANDOR_LIMITS_TOKEN_RATE", &["limits", "token_rate"], true),
    ("CANDOR_LIMITS_TOKEN_BURST", &["limits", "token_burst"], true),
    ("CANDOR_CLIENT_ASSERTION_LEEWAY", &["client_assertion", "leeway"], true),
    ("CANDOR_CLIENT_ASSERTION_SECRET_KEY", &["client_assertion", "secret_key"], false),
    ("CANDOR_DPOP_LEEWAY", &["dpop", "leeway"], true),
    ("CANDOR_DPOP_NONCE", &["dpop", "nonce"], false),
    ("CANDOR_DEVICE_CODE_LIFETIME", &["device", "code_lifetime"], true),
    ("CANDOR_DEVICE_POLL_INTERVAL", &["device", "poll_interval"], true),
    ("CANDOR_REGISTRATION_ENABLED", &["registration", "enabled"], false),
    ("CANDOR_REGISTRATION_INITIAL_ACCESS_TOKEN", &["registration", "initial_access_token"], false),
    ("CANDOR_REGISTRATION_BACKCHANNEL_LOGOUT", &["registration", "backchannel_logout"], false),
    ("CANDOR_LOG_FORMAT", &["log", "format"], false),
    ("CANDOR_LOG_LEVEL", &["log", "level"], false),
];

impl Config {
    /// Reads the file, applies environment overrides, and validates. Errors name the key.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Config::parse(&text, env).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        for (var, path, numeric) in KEYS {
            let Some(raw) = env(var) else { continue };
            let value = if *numeric {
                toml::Value::Integer(raw.trim().parse().map_err(|_| format!("{var}: {raw:?} is not a whole number"))?)
            } else if let Ok(flag) = raw.trim().parse::<bool>() {
                // A switch (`CANDOR_DPOP_NONCE=true`); no string setting is spelled true or false.
                toml::Value::Boolean(flag)
            } else {
                toml::Value::String(raw)
            };
            let mut t = &mut table;
            for part in &path[..path.len() - 1] {
                let entry = t.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                t = entry.as_table_mut().ok_or_else(|| format!("{part}: must be a table"))?;
            }
            t.insert(path[path.len() - 1].to_string(), value);
        }
        let config: Config = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            issuer: self.issuer.clone(),
            code_lifetime: self.lifetimes.code,
            access_token_lifetime: self.lifetimes.access_token,
            refresh_token_lifetime: self.lifetimes.refresh_token,
            id_token_lifetime: self.lifetimes.id_token,
            interaction_lifetime: self.lifetimes.interaction,
            session_lifetime: self.lifetimes.session,
            refresh_reuse_grace: self.lifetimes.refresh_reuse_grace,
            tombstone_retention: self.retention.tombstones,
            audit_retention: self.retention.audit,
            key_reload_interval: self.keys.reload_interval,
            login_free_failures: self.login.free_failures,
            login_address_free_failures: self.login.address_free_failures,
            login_max_delay: self.login.max_delay,
            trusted_proxies: self.trusted_proxies.clone(),
            token_rate: self.limits.token_rate,
            token_burst: self.limits.token_burst,
            client_assertion_leeway: self.client_assertion.leeway,
            client_secret_key: self.client_assertion.secret_key.clone(),
            dpop_leeway: self.dpop.leeway,
            dpop_nonce: self.dpop.nonce,
            device_code_lifetime: self.device.code_lifetime,
            device_poll_interval: self.device.poll_interval,
            registration: candor_core::settings::RegistrationSettings {
                enabled: self.registration.enabled,
                initial_token_hash: self
                    .registration
                    .initial_access_token
                    .as_deref()
                    .map(candor_core::tokens::hash_secret),
                backchannel_logout: self.registration.backchannel_logout,
            },
        }
    }

    pub fn disclosure(&self) -> Disclosure {
        Disclosure::parse(&self.disclosure).unwrap_or(Disclosure::Standard)
    }

    fn validate(&self) -> Result<(), String> {
        // Name the key as written in candor.toml, not the internal setting.
        const KEYS: [(&str, &str); 20] = [
            ("code_lifetime", "lifetimes.code"),
            ("access_token_lifetime", "lifetimes.access_token"),
            ("refresh_token_lifetime", "lifetimes.refresh_token"),
            ("id_token_lifetime", "lifetimes.id_token"),
            ("interaction_lifetime", "lifetimes.interaction"),
            ("session_lifetime", "lifetimes.session"),
            ("tombstone_retention", "retention.tombstones"),
            ("audit_retention", "retention.audit"),
            ("refresh_reuse_grace", "lifetimes.refresh_reuse_grace"),
            ("key_reload_interval", "keys.reload_interval"),
            ("login_free_failures", "login.free_failures"),
            ("login_address_free_failures", "login.address_free_failures"),
            ("login_max_delay", "login.max_delay"),
            ("token_rate", "limits.token_rate"),
            ("token_burst", "limits.token_burst"),
            ("client_assertion_leeway", "client_assertion.leeway"),
            ("client_secret_key", "client_assertion.secret_key"),
            ("dpop_leeway", "dpop.leeway"),
            ("device_code_lifetime", "device.code_lifetime"),
            ("device_poll_interval", "device.poll_interval"),
        ];
        self.settings().validate().map_err(|e| {
            KEYS.iter()
                .find_map(|(internal, key)| e.strip_prefix(internal).map(|rest| format!("{key}{rest}")))
                .unwrap_or(e)
        })?;
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err("admin_token: must be at least 32 characters".into());
        }
        if self.registration.initial_access_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err("registration.initial_access_token: must be at least 32 characters".into());
        }
        if !self.registration.enabled
            && (self.registration.initial_access_token.is_some() || self.registration.backchannel_logout)
        {
            return Err(
                "registration: set registration.enabled = true, or the other registration settings do nothing".into()
            );
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| format!("issuer: {e}"))?;
        let loopback = matches!(issuer.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if issuer.scheme() != "https" && !loopback {
            return Err(format!(
                "issuer: {:?} must use https (http is only allowed for loopback addresses)",
                self.issuer
            ));
        }
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| format!("listen: {:?} is not an address:port ({e})", self.listen))?;
        if Disclosure::parse(&self.disclosure).is_none() {
            return Err(format!("disclosure: {:?} must be \"standard\" or \"detailed\"", self.disclosure));
        }
        if !["sqlite:", "postgres:", "postgresql:"].iter().any(|p| self.store.starts_with(p)) {
            return Err(format!(
                "store: {:?} must be a sqlite:// or postgres:// URL",
                candor_store::redacted(&self.store)
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(format!("log.format: {:?} must be \"text\" or \"json\"", self.log.format));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_minimal_config_gets_defaults() {
        let c = Config::parse("issuer = \"https://id.example.com\"", &none).unwrap();
        assert_eq!(c.lifetimes.code, 60);
        assert_eq!(c.disclosure(), Disclosure::Standard);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("issuer = \"https://id.example.com\"\n[lifetimes]\ncode = 900", &none).unwrap_err();
        assert!(e.starts_with("lifetimes.code:"), "{e}");
        let e = Config::parse("issuer = \"http://id.example.com\"", &none).unwrap_err();
        assert!(e.starts_with("issuer"), "{e}");
        let e = Config::parse("issuer = \"https://id.example.com\"\nlisten = \"nope\"", &none).unwrap_err();
        assert!(e.starts_with("listen"), "{e}");
        let e = Config::parse("issuer = \"https://id.example.com\"\nissuerr = 1", &none).unwrap_err();
        assert!(e.contains("issuerr"), "{e}");
        let e = Config::parse("issuer = \"https://id.example.com\"\n[login]\nmax_delay = 0", &none).unwrap_err();
        assert!(e.starts_with("login.max_delay:"), "{e}");
        let e = Config::parse("issuer = \"https://id.example.com\"\n[login]\naddress_free_failures = 0", &none)
            .unwrap_err();
        assert!(e.starts_with("login.address_free_failures:"), "{e}");
        let e = Config::parse("issuer = \"https://id.example.com\"\ntrusted_proxies = [\"lb.internal\"]", &none)
            .unwrap_err();
        assert!(e.starts_with("trusted_proxies:") && e.contains("lb.internal"), "{e}");
        let c = Config::parse("issuer = \"https://id.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\"]", &|k: &str| {
            (k == "CANDOR_LOGIN_FREE_FAILURES").then(|| "3".to_string())
        })
        .unwrap();
        assert_eq!(
            (c.settings().login_free_failures, c.settings().trusted_proxies),
            (3, vec!["10.0.0.0/8".to_string()])
        );
        assert!(Config::parse("", &none).unwrap_err().contains("issuer"));
        let e = Config::parse("issuer = \"https://id.example.com\"\n[keys]\nreload_interval = 0", &none).unwrap_err();
        assert!(e.starts_with("keys.reload_interval:"), "{e}");
        let e = Config::parse("issuer = \"https://id.example.com\"\nstore = \"mysql://u:pw@h/db\"", &none).unwrap_err();
        assert!(e.starts_with("store:") && !e.contains("pw"), "the password is not repeated: {e}");
        let c = Config::parse("issuer = \"https://id.example.com\"\nstore = \"postgres://u@h/db\"", &none).unwrap();
        assert_eq!((c.store.as_str(), c.settings().key_reload_interval), ("postgres://u@h/db", 10));
    }

    #[test]
    fn registration_is_off_by_default_and_its_token_is_kept_as_a_hash() {
        let base = "issuer = \"https://id.example.com\"";
        let c = Config::parse(base, &none).unwrap();
        assert!(!c.settings().registration.enabled);
        let token = "t".repeat(40);
        let env = |k: &str| match k {
            "CANDOR_REGISTRATION_ENABLED" => Some("true".to_string()),
            "CANDOR_REGISTRATION_INITIAL_ACCESS_TOKEN" => Some("t".repeat(40)),
            _ => None,
        };
        let s = Config::parse(base, &env).unwrap().settings();
        assert!(s.registration.enabled && !s.registration.backchannel_logout);
        assert_eq!(s.registration.initial_token_hash, Some(candor_core::tokens::hash_secret(&token)));
        let e =
            Config::parse(&format!("{base}\n[registration]\nenabled = true\ninitial_access_token = \"short\""), &none)
                .unwrap_err();
        assert!(e.starts_with("registration.initial_access_token:"), "{e}");
        let e = Config::parse(&format!("{base}\n[registration]\nbackchannel_logout = true"), &none).unwrap_err();
        assert!(e.starts_with("registration:") && e.contains("enabled"), "{e}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |k: &str| match k {
            "CANDOR_LIFETIMES_CODE" => Some("30".to_string()),
            "CANDOR_ISSUER" => Some("https://other.example".to_string()),
            _ => None,
        };
        let c = Config::parse("issuer = \"https://id.example.com\"", &env).unwrap();
        assert_eq!(c.lifetimes.code, 30);
        assert_eq!(c.issuer, "https://other.example");
        let bad = |k: &str| (k == "CANDOR_LIFETIMES_CODE").then(|| "soon".to_string());
        assert!(
            Config::parse("issuer = \"https://id.example.com\"", &bad)
                .unwrap_err()
                .starts_with("CANDOR_LIFETIMES_CODE")
        );
    }

    #[test]
    fn dpop_settings_come_from_the_file_or_the_environment() {
        let c = Config::parse("issuer = \"https://id.example.com\"", &none).unwrap();
        assert_eq!((c.settings().dpop_nonce, c.settings().dpop_leeway), (false, 60));
        let c = Config::parse("issuer = \"https://id.example.com\"\n[dpop]\nnonce = true\nleeway = 30", &none).unwrap();
        assert_eq!((c.settings().dpop_nonce, c.settings().dpop_leeway), (true, 30));
        let env = |k: &str| (k == "CANDOR_DPOP_NONCE").then(|| "true".to_string());
        assert!(Config::parse("issuer = \"https://id.example.com\"", &env).unwrap().settings().dpop_nonce);
        let e = Config::parse("issuer = \"https://id.example.com\"\n[dpop]\nleeway = 0", &none).unwrap_err();
        assert!(e.starts_with("dpop.leeway:"), "{e}");
    }

    #[test]
    fn device_settings_come_from_the_file_or_the_environment() {
        let c = Config::parse("issuer = \"https://id.example.com\"", &none).unwrap();
        assert_eq!((c.settings().device_code_lifetime, c.settings().device_poll_interval), (600, 5));
        let text = "issuer = \"https://id.example.com\"\n[device]\ncode_lifetime = 900\npoll_interval = 10";
        let c = Config::parse(text, &none).unwrap();
        assert_eq!((c.settings().device_code_lifetime, c.settings().device_poll_interval), (900, 10));
        let env = |k: &str| (k == "CANDOR_DEVICE_POLL_INTERVAL").then(|| "3".to_string());
        assert_eq!(
            Config::parse("issuer = \"https://id.example.com\"", &env).unwrap().settings().device_poll_interval,
            3
        );
        let e = Config::parse("issuer = \"https://id.example.com\"\n[device]\npoll_interval = 0", &none).unwrap_err();
        assert!(e.starts_with("device.poll_interval:"), "{e}");
    }
}

//! `spawn_app()` and typed helpers for driving Candor like a browser and a client would.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use candor_core::clock::{Clock, ShiftedClock};
use candor_core::model::{AuthMethod, Client, GrantType, SigningAlg, User};
use candor_core::password::hash_password;
use candor_core::settings::Settings;
use candor_core::store::Store;
use candor_core::tokens::{Secret, SecretKind};
use candor_server::Disclosure;
use candor_server::state::AppState;
use candor_store::AnyStore;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::sync::OnceLock;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";
pub const WEB: &str = "web";
pub const WEB_REDIRECT: &str = "https://app.example.com/callback";
pub const WEB_SLASH_REDIRECT: &str = "https://app.example.com/callback/";
pub const POST_CLIENT: &str = "web-post";
pub const SPA: &str = "spa";
pub const SPA_REDIRECT: &str = "http://127.0.0.1/cb";
pub const SERVICE: &str = "service";
pub const PLAIN: &str = "plain-pkce";
pub const ES: &str = "es-client";
pub const ED: &str = "ed-client";
pub const NO_PKCE: &str = "no-pkce";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789abcdef";

/// Which store this test binary runs against (each binary's root says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    /// The store's URL, for the `candor` binary's admin commands.
    pub store_url: String,
    pub clock: ShiftedClock,
    pub store: Arc<dyn Store>,
    /// The same store, for the few tests that look at its tables directly.
    pub raw: AnyStore,
    pub state: Arc<AppState>,
    /// Client secrets by client id.
    pub secrets: std::collections::HashMap<&'static str, String>,
    pub user_id: String,
    _dir: tempfile::TempDir,
    _scratch: Option<candor_store::scratch::PgScratch>,
}

/// The argon2 hash of PASSWORD, computed once for all tests.
fn password_hash() -> String {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password(PASSWORD).unwrap()).clone()
}

pub fn client(
    id: &str,
    method: AuthMethod,
    redirects: &[&str],
    grants: &[GrantType],
    secret: Option<&Secret>,
) -> Client {
    Client {
        id: id.into(),
        name: format!("{id} app"),
        secret_hash: secret.map(|s| s.hash.clone()),
        redirect_uris: redirects.iter().map(|s| s.to_string()).collect(),
        grant_types: grants.to_vec(),
        auth_method: method,
        scopes: ["openid", "profile", "email", "offline_access"].iter().map(|s| s.to_string()).collect(),
        require_pkce: true,
        allow_plain_pkce: false,
        id_token_alg: SigningAlg::RS256,
        always_issue_refresh_token: false,
        created_at: 0,
        jwks: None,
        require_par: false,
        access_token_format: candor_core::model::TokenFormat::Opaque,
        resources: vec![],
        require_dpop: false,
        logout: Default::default(),
        registration_token_hash: None,
        secret_sealed: None,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, Disclosure::Detailed).await
}

/// Everything every server in this test binary logs (JSON lines), for the secrets scan.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs (once) a global subscriber at debug level that captures all logs.
pub fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter("debug,hyper=info,hyper_util=info,h2=info,reqwest=info")
            .with_writer(logs.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}

pub async fn spawn_app_with(tune: impl FnOnce(&mut Settings), disclosure: Disclosure) -> TestApp {
    spawn_app_on(tune, disclosure, str::to_string).await
}

/// `spawn_app_with`, with the server's store URL rewritten by `route` (to reach the database
/// through a proxy the test controls). The schema is made, and `store_url` kept, with the direct URL.
pub async fn spawn_app_on(
    tune: impl FnOnce(&mut Settings),
    disclosure: Disclosure,
    route: impl FnOnce(&str) -> String,
) -> TestApp {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let (url, scratch) = match crate::BACKEND {
        Backend::Sqlite => (format!("sqlite://{}/candor.db", dir.path().display()), None),
        Backend::Postgres => {
            let base = candor_store::scratch::test_database_url()
                .unwrap()
                .expect("CANDOR_TEST_POSTGRES_URL is set when the PostgreSQL suite is built");
            let scratch = candor_store::scratch::PgScratch::create(&base).await.unwrap();
            (scratch.url.clone(), Some(scratch))
        }
    };
    let raw = candor_store::open(&route(&url)).await.unwrap();
    let store = raw.clone().into_store();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut settings = Settings::new(&base);
    tune(&mut settings);
    let clock = ShiftedClock::default();
    let state =
        AppState::with_admin_token(store.clone(), settings, Arc::new(clock.clone()), disclosure, Some(ADMIN_TOKEN))
            .await
            .unwrap();

    let user = User {
        id: "user-alice".into(),
        username: USER.into(),
        password_hash: password_hash(),
        name: Some("Alice Example".into()),
        email: Some("alice@example.com".into()),
        email_verified: true,
        disabled: false,
        created_at: clock.now(),
    };
    store.insert_user(&user).await.unwrap();

    let mut secrets = std::collections::HashMap::new();
    let code_grants = [GrantType::AuthorizationCode, GrantType::RefreshToken];
    for (id, method, redirects, grants, tweak) in [
        (WEB, AuthMethod::ClientSecretBasic, vec![WEB_REDIRECT, WEB_SLASH_REDIRECT], code_grants.to_vec(), 0),
        (POST_CLIENT, AuthMethod::ClientSecretPost, vec![WEB_REDIRECT], code_grants.to_vec(), 0),
        (SPA, AuthMethod::None, vec![SPA_REDIRECT, "http://127.0.0.1/callback"], code_grants.to_vec(), 0),
        (SERVICE, AuthMethod::ClientSecretBasic, vec![], vec![GrantType::ClientCredentials], 1),
        (PLAIN, AuthMethod::ClientSecretBasic, vec![WEB_REDIRECT], code_grants.to_vec(), 2),
        (ES, AuthMethod::ClientSecretBasic, vec![WEB_REDIRECT], code_grants.to_vec(), 3),
        (ED, AuthMethod::ClientSecretBasic, vec![WEB_REDIRECT], code_grants.to_vec(), 4),
        (NO_PKCE, AuthMethod::ClientSecretBasic, vec![WEB_REDIRECT], code_grants.to_vec(), 5),
    ] {
        let secret = (method != AuthMethod::None).then(|| Secret::generate(SecretKind::ClientSecret).unwrap());
        let mut c = client(id, method, &redirects, &grants, secret.as_ref());
        match tweak {
            1 => c.scopes = vec!["api.read".into(), "api.write".into()],
            2 => c.allow_plain_pkce = true,
            3 => c.id_token_alg = SigningAlg::ES256,
            4 => c.id_token_alg = SigningAlg::EdDSA,
            5 => c.require_pkce = false,
            _ => {}
        }
        store.insert_client(&c).await.unwrap();
        if let Some(s) = secret {
            secrets.insert(id, s.value);
        }
    }

    let server_state = state.clone();
    tokio::spawn(async move {
        candor_server::serve(listener, server_state, std::future::pending()).await.unwrap();
    });
    TestApp { base, store_url: url, clock, store, raw, state, secrets, user_id: user.id, _dir: dir, _scratch: scratch }
}

/// A PKCE pair (RFC 7636).
#[derive(Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = Secret::generate(SecretKind::Interaction).unwrap().value.replace("cdi_", "verifier-");
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
    Pkce { verifier, challenge }
}

/// What arrived at the client's redirect URI.
#[derive(Debug, Clone)]
pub struct Callback {
    pub url: String,
    pub params: std::collections::HashMap<String, String>,
}

impl Callback {
    pub fn parse(location: &str) -> Callback {
        let url = url::Url::parse(location).unwrap();
        Callback { url: location.to_string(), params: url.query_pairs().into_owned().collect() }
    }
    pub fn code(&self) -> String {
        self.params.get("code").cloned().unwrap_or_else(|| panic!("no code in {}", self.url))
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
}

/// A browser: a cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location; status {}", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// An authorization request's parameters for a client, with PKCE S256, state and nonce.
pub fn auth_params<'a>(
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
    pkce: &'a Pkce,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn authorize(&self, b: &reqwest::Client, params: &[(&str, &str)]) -> reqwest::Response {
        b.get(self.url("/authorize")).query(params).send().await.unwrap()
    }

    /// Follows an /authorize response through login (if asked) and consent (if asked) to the callback.
    pub async fn complete(&self, b: &reqwest::Client, mut r: reqwest::Response) -> Callback {
        for _ in 0..8 {
            match r.status() {
                StatusCode::FOUND | StatusCode::SEE_OTHER => {
                    let loc = location(&r);
                    if loc.starts_with('/') {
                        r = b.get(self.url(&loc)).send().await.unwrap();
                    } else {
                        return Callback::parse(&loc);
                    }
                }
                StatusCode::OK => {
                    let page = r.text().await.unwrap();
                    let csrf = csrf_of(&page);
                    let action = page.split(r#"action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
                    let form: Vec<(&str, &str)> = if action.ends_with("/login") {
                        vec![("csrf", &csrf), ("username", USER), ("password", PASSWORD)]
                    } else {
                        vec![("csrf", &csrf), ("decision", "allow")]
                    };
                    r = b.post(self.url(&action)).form(&form).send().await.unwrap();
                }
                other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
            }
        }
        panic!("too many steps")
    }

    /// A full authorization with login and consent in a fresh browser; returns the callback.
    pub async fn authorize_through(&self, params: &[(&str, &str)]) -> Callback {
        let b = browser();
        let r = self.authorize(&b, params).await;
        self.complete(&b, r).await
    }

    /// A code for `client_id` with the standard scopes; returns the callback and the PKCE pair.
    pub async fn code_for(&self, client_id: &str, redirect_uri: &str, scope: &str) -> (Callback, Pkce) {
        let p = pkce();
        let cb = self.authorize_through(&auth_params(client_id, redirect_uri, scope, &p)).await;
        (cb, p)
    }

    /// POSTs a form to /token, authenticating with Basic when `basic` is given.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.post_form("/token", form, basic).await
    }

    /// Posts `form` to `path`, as the client `basic` with its secret (HTTP Basic) if given.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = reqwest::Client::new().post(self.url(path)).form(form);
        if let Some(id) = basic {
            req = req.basic_auth(id, Some(self.secret(id)));
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap(), headers)
    }

    pub fn secret(&self, id: &str) -> String {
        self.secrets.get(id).cloned().unwrap_or_default()
    }

    /// Exchanges a code as the `web` client.
    pub async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", WEB_REDIRECT),
                    ("code_verifier", verifier),
                ],
                Some(WEB),
            )
            .await;
        (s, v)
    }

    /// Exchanges a code as `client_id` with `secret` (HTTP Basic) at `WEB_REDIRECT`: the response.
    pub async fn exchange_as(&self, client_id: &str, secret: &str, code: &str, verifier: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        reqwest::Client::new().get(self.url("/userinfo")).bearer_auth(access_token).send().await.unwrap()
    }

    /// A code for `web`, exchanged: the token response.
    pub async fn tokens(&self, scope: &str) -> Value {
        let (cb, p) = self.code_for(WEB, WEB_REDIRECT, scope).await;
        let (s, v) = self.exchange(&cb.code(), &p.verifier).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

impl TestApp {
    /// The admin API's explanation of a trace.
    pub async fn explain(&self, trace: &str) -> Value {
        let r = reqwest::Client::new()
            .get(self.url(&format!("/admin/traces/{trace}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// Asserts an error response carries the reason and the RFC error.
pub fn assert_reason(body: &Value, reason: &str, error: &str) {
    assert_eq!(body["reason"], reason, "{body:#}");
    assert_eq!(body["error"], error, "{body:#}");
    assert!(body["error_description"].as_str().unwrap().contains(&body["trace_id"].as_str().unwrap().to_string()));
}

/// Decodes a JWT's header and claims (no verification).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let dec = |s: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (dec(parts.next().unwrap()), dec(parts.next().unwrap()))
}

/// A compact JWS of `claims` with an HMAC (`HS256`, `HS384` or `HS512`) keyed by `secret`: a
/// client_secret_jwt assertion.
pub fn hmac_jwt(alg: &str, secret: &str, claims: &Value) -> String {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let header = serde_json::json!({"alg": alg, "typ": "JWT"}).to_string();
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let tag = hmac::sign(&hmac::Key::new(algorithm, secret.as_bytes()), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Verifies a JWT's signature against the server's JWKS; returns the claims.
pub async fn verify_jwt(app: &TestApp, token: &str) -> Value {
    let jwks: Value = reqwest::get(app.url("/jwks.json")).await.unwrap().json().await.unwrap();
    let alg = candor_client::jwt::verify_signature(token, &jwks).unwrap_or_else(|e| panic!("{e}"));
    let (header, claims) = jwt_parts(token);
    assert_eq!(header["alg"], alg.as_str());
    claims
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever kind it is.
macro_rules! with_pool {
    ($app:expr, $pool:ident => $body:expr) => {
        match &$app.raw {
            AnyStore::Sqlite(s) => {
                let $pool = s.pool();
                $body
            }
            AnyStore::Postgres(s) => {
                let $pool = s.pool();
                $body
            }
        }
    };
}

/// Direct access to the store's tables, for the tests that check what is (not) stored.
impl TestApp {
    pub async fn sql_execute(&self, sql: &str) {
        with_pool!(self, pool => { sqlx::query(sql).execute(pool).await.unwrap(); })
    }

    /// The rows of a query whose columns are all text (NULL as None), with `$1…` bound to `binds`.
    pub async fn sql_texts(&self, sql: &str, binds: &[&str]) -> Vec<Vec<Option<String>>> {
        use sqlx::Row;
        with_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|row| (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i).unwrap()).collect())
                .collect()
        })
    }

    /// The single BIGINT a query returns (a COUNT), with `$1…` bound to `binds`.
    pub async fn sql_count(&self, sql: &str, binds: &[&str]) -> i64 {
        with_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, (i64,)>(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_one(pool).await.unwrap().0
        })
    }
}

//! `candor dev` (embedded, zero-config) and `candor serve` (from a config file).

use crate::admin::{ClientSpec, build_client, default_scopes, user_add};
use crate::config::Config;
use candor_core::clock::{Clock, SystemClock};
use candor_core::model::{ClientLogout, GrantType, SigningAlg};
use candor_core::pkce::s256;
use candor_core::settings::Settings;
use candor_core::store::Store;
use candor_core::tokens::{Secret, SecretKind};
use candor_server::Disclosure;
use candor_server::state::AppState;
use clap::Args;
use std::path::Path;
use std::sync::Arc;

pub const DEV_DIR: &str = ".candor";
pub const DEMO_USER: &str = "demo";
pub const DEMO_APP: &str = "demo-app";
pub const DEMO_APP_REDIRECT: &str = "http://localhost:3000/callback";
/// Where the demo app's logout may send the browser back to.
pub const DEMO_APP_POST_LOGOUT: &str = "http://localhost:3000/";
pub const DEMO_CLI: &str = "demo-cli";
pub const DEMO_CLI_REDIRECT: &str = "http://127.0.0.1/callback";

pub fn default_store_url() -> String {
    format!("sqlite://{DEV_DIR}/dev.db")
}

#[derive(Args)]
pub struct DevArgs {
    /// Port on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Use a throwaway store: a private temporary file, deleted when Candor stops.
    #[arg(long)]
    ephemeral: bool,
    /// Directory of the dev store.
    #[arg(long, default_value = DEV_DIR)]
    data_dir: String,
    /// Log as JSON lines.
    #[arg(long)]
    json_logs: bool,
    /// Require the server's nonce in DPoP proofs (RFC 9449 §8), as `[dpop] nonce = true` does.
    #[arg(long)]
    dpop_nonce: bool,
    /// Serve dynamic client registration (RFC 7591, RFC 7592) at /register, open to anything
    /// that reaches this loopback port, back-channel logout URIs included.
    #[arg(long)]
    registration: bool,
}

fn init_logs(json: bool, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CANDOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: draining in-flight requests");
}

pub async fn run(args: DevArgs) -> Result<(), String> {
    seed_random_early();
    init_logs(args.json_logs, "info");
    let url = if args.ephemeral {
        "sqlite::memory:".to_string()
    } else {
        std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("{}: {e}", args.data_dir))?;
        format!("sqlite://{}/dev.db", args.data_dir)
    };
    let store: Arc<dyn Store> = candor_store::open(&url)
        .await
        .map_err(|e| format!("store {}: {e}", candor_store::redacted(&url)))?
        .into_store();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e} (try --port 0)", args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let issuer = format!("http://127.0.0.1:{}", addr.port());
    let mut settings = Settings::new(&issuer);
    settings.dpop_nonce = args.dpop_nonce;
    settings.registration.enabled = args.registration;
    settings.registration.backchannel_logout = args.registration;
    // client_secret_jwt works in dev too: its sealing key lives beside the dev store (and, for
    // an ephemeral store, in memory), or comes from the environment like in production.
    settings.client_secret_key = Some(match std::env::var("CANDOR_CLIENT_ASSERTION_SECRET_KEY") {
        Ok(key) => key,
        Err(_) if args.ephemeral => random_key()?,
        Err(_) => dev_sealing_key(&args.data_dir)?,
    });
    // A fresh admin token each start: dev mode has the admin API on, and nothing stores the token.
    let admin_token = Secret::generate(SecretKind::Session).map_err(|e| e.to_string())?.value;
    let state = AppState::with_admin_token(
        store.clone(),
        settings,
        Arc::new(SystemClock),
        Disclosure::Detailed,
        Some(&admin_token),
    )
    .await
    .map_err(|e| e.to_string())?;
    let seeded = seed(store.as_ref()).await?;
    print_banner(&issuer, &url, args.ephemeral, &seeded, &admin_token);
    candor_server::serve(listener, state, shutdown_signal()).await.map_err(|e| e.to_string())
}

fn random_key() -> Result<String, String> {
    let bytes = candor_core::tokens::random_bytes::<32>().map_err(|e| e.to_string())?;
    Ok(candor_core::tokens::b64url(&bytes))
}

/// The dev store's sealing key for client_secret_jwt secrets: `DIR/client-secret.key`, made on
/// first start, readable by its owner only.
fn dev_sealing_key(dir: &str) -> Result<String, String> {
    let path = std::path::Path::new(dir).join("client-secret.key");
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(key.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            std::io::Write::write_all(&mut file, key.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What seeding created this time (secrets only exist on first start).
struct Seeded {
    password: Option<String>,
    app_secret: Option<String>,
}

async fn seed(store: &dyn Store) -> Result<Seeded, String> {
    let now = SystemClock.now();
    let password = if store.user_by_username(DEMO_USER).await.map_err(|e| e.to_string())?.is_none() {
        Some(user_add(store, DEMO_USER, None, Some("Demo User".into()), Some("demo@example.com".into()), true).await?)
    } else {
        None
    };
    let code_grants = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    let mut app = demo_client(
        DEMO_APP,
        "Demo App",
        false,
        vec![DEMO_APP_REDIRECT.into(), DEMO_CLI_REDIRECT.into()],
        [code_grants.clone(), vec![GrantType::ClientCredentials]].concat(),
    );
    app.logout.post_logout_redirect_uris = vec![DEMO_APP_POST_LOGOUT.into()];
    let app = seed_client(store, app, now).await?;
    // A CLI signs in through a loopback redirect, or, on a machine without a browser, with the
    // device grant (RFC 8628).
    let cli_grants = [code_grants, vec![GrantType::DeviceCode]].concat();
    seed_client(store, demo_client(DEMO_CLI, "Demo CLI", true, vec![DEMO_CLI_REDIRECT.into()], cli_grants), now)
        .await?;
    let app_secret = app.flatten();
    Ok(Seeded { password, app_secret })
}

/// A demo client's registration: PKCE, the standard scopes, RS256, opaque tokens.
fn demo_client(
    id: &str,
    name: &str,
    public: bool,
    redirect_uris: Vec<String>,
    grant_types: Vec<GrantType>,
) -> ClientSpec {
    ClientSpec {
        id: Some(id.into()),
        name: name.into(),
        public,
        redirect_uris,
        grant_types,
        auth_method: None,
        scopes: default_scopes(),
        require_pkce: true,
        allow_plain_pkce: false,
        id_token_alg: SigningAlg::RS256,
        always_issue_refresh_token: false,
        jwks: None,
        require_par: false,
        access_token_format: candor_core::model::TokenFormat::Opaque,
        resources: vec![],
        require_dpop: false,
        logout: ClientLogout::default(),
    }
}

/// Registers a demo client unless it exists; `Some(secret)` only when a confidential one was created now.
async fn seed_client(store: &dyn Store, spec: ClientSpec, now: i64) -> Result<Option<Option<String>>, String> {
    if let Some(id) = &spec.id
        && store.client(id).await.map_err(|e| e.to_string())?.is_some()
    {
        return Ok(None);
    }
    let (client, secret) = build_client(spec, now)?;
    store.insert_client(&client).await.map_err(|e| e.to_string())?;
    Ok(Some(secret))
}

fn print_banner(issuer: &str, url: &str, ephemeral: bool, seeded: &Seeded, admin_token: &str) {
    let verifier = Secret::generate(SecretKind::Interaction)
        .map(|s| s.value.replace("cdi_", "v-"))
        .unwrap_or_else(|_| "x".repeat(50));
    let challenge = s256(&verifier);
    let state = &Secret::generate(SecretKind::Interaction).map(|s| s.value[4..20].to_string()).unwrap_or_default();
    let authorize = format!(
        "{issuer}/authorize?response_type=code&client_id={DEMO_APP}&redirect_uri={}&scope=openid%20profile%20email%20offline_access&state={state}&nonce=n-{state}&code_challenge={challenge}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(DEMO_APP_REDIRECT.as_bytes()).collect::<String>()
    );
    let password = seeded
        .password
        .clone()
        .unwrap_or_else(|| "(set at first start; `candor user set-password demo` makes a new one)".into());
    let secret = seeded
        .app_secret
        .clone()
        .unwrap_or_else(|| "(shown at first start; `candor client rotate-secret demo-app` makes a new one)".into());
    let secret_for_curl = seeded.app_secret.clone().unwrap_or_else(|| "<client secret>".into());
    println!(
        r#"
Candor dev provider
  issuer:     {issuer}
  discovery:  {issuer}/.well-known/openid-configuration
  store:      {store}

  demo user:  {DEMO_USER}
  password:   {password}

  confidential client: {DEMO_APP}
    secret:       {secret}
    redirect URIs: {DEMO_APP_REDIRECT}  {DEMO_CLI_REDIRECT} (any port)
  public client:       {DEMO_CLI} (PKCE)
    redirect URI:  {DEMO_CLI_REDIRECT} (any port)
    device grant:  candor flow --issuer {issuer} --client-id {DEMO_CLI} --device

1. Open this URL, sign in, allow. The browser lands on {DEMO_APP_REDIRECT}?code=...
   (nothing listens there: copy the code from the address bar)
   {authorize}

2. Exchange the code within 60 seconds:
   curl -s -u {DEMO_APP}:{secret_for_curl} {issuer}/token \
     -d grant_type=authorization_code -d redirect_uri={DEMO_APP_REDIRECT} \
     -d code_verifier={verifier} -d code=PASTE_CODE_HERE

A refused request says why: read error_description, or open error_uri.
Every response has a candor-trace-id header; the full diagnosis of a trace:
   candor explain TRACE_ID{explain_store}
   curl -s -H 'Authorization: Bearer {admin_token}' {issuer}/admin/traces/TRACE_ID
Recent refusals by client and reason (user: admin, password: the admin token):
   {issuer}/admin/rejections
"#,
        explain_store = if ephemeral { " (not with --ephemeral: use the admin URL)" } else { "" },
        store = if ephemeral { "in memory (--ephemeral)".to_string() } else { url.to_string() },
    );
}

/// Seeds the cryptographic random generator on a thread of its own while the store opens. It is
/// seeded on first use, which took 50–65 ms on a 2-core VM (docs/performance.md), and the first
/// use is otherwise the first request's trace id: that request would wait for it.
fn seed_random_early() {
    let _ = std::thread::Builder::new().name("candor-seed-random".into()).spawn(|| {
        if candor_core::tokens::random_bytes::<1>().is_err() {
            tracing::warn!("the system random number generator failed; requests will fail until it works");
        }
    });
}

pub async fn serve(path: &Path) -> Result<(), String> {
    seed_random_early();
    let config = Config::load(path, &|k| std::env::var(k).ok())?;
    init_logs(config.log.format == "json", &config.log.level);
    // Production never changes the schema by itself: `candor migrate` does, on purpose.
    let store: Arc<dyn Store> = candor_store::open_with(&config.store, candor_store::Schema::Require)
        .await
        .map_err(|e| format!("store {}: {e}", candor_store::redacted(&config.store)))?
        .into_store();
    let listener =
        tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| format!("listen {}: {e}", config.listen))?;
    let state = AppState::with_admin_token(
        store,
        config.settings(),
        Arc::new(SystemClock),
        config.disclosure(),
        config.admin_token.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(issuer = %config.issuer, listen = %config.listen, "candor serving");
    candor_server::serve(listener, state, shutdown_signal()).await.map_err(|e| e.to_string())
}

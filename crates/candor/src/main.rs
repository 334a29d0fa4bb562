//! `candor`: the OpenID Connect provider that tells you why.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]

mod admin;
mod bench;
mod config;
mod dev;

use admin::ClientSpec;
use candor_core::model::{AuthMethod, ClientLogout, GrantType, SigningAlg, TokenFormat};
use candor_core::store::Store;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc instead of the system allocator: a request allocates and frees small buffers on
/// several threads (HTTP, JSON, the store's rows), and glibc's malloc and free were about a
/// tenth of the runtime threads' time under load (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "candor", version, about = "An OpenID Connect provider that tells you why a request failed.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a development provider: SQLite in ./.candor/dev.db, demo user and clients, no config.
    Dev(dev::DevArgs),
    /// Run in production mode from a config file.
    Serve {
        #[arg(long, short, default_value = "candor.toml")]
        config: PathBuf,
    },
    /// Apply the store's schema migrations (`serve` refuses a schema it does not match).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage clients.
    Client {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage protected resources (APIs) that access tokens are issued for (RFC 8707).
    Resource {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// Manage users.
    User {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Run one authorization-code flow against any OpenID provider, every step shown and checked.
    /// Exits 1 when a step fails.
    Flow(FlowArgs),
    /// Find the client's mistake in an authorization-code exchange, offline, against any provider.
    /// Exits 1 when it finds a problem.
    Doctor(DoctorArgs),
    /// Explain a request by its trace id (the candor-trace-id header, or `[trace ...]` in error_description).
    Explain {
        trace_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Drive load at any OpenID provider over HTTP and report throughput, latency and errors.
    Bench(bench::BenchArgs),
    /// Manage signing keys.
    Key {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Args)]
struct FlowArgs {
    /// The provider's issuer URL (discovery is read from it).
    #[arg(long)]
    issuer: String,
    /// The registered client to run the flow with (or --register).
    #[arg(long, required_unless_present = "register", conflicts_with = "register")]
    client_id: Option<String>,
    /// Register a client of the flow's own first (RFC 7591, the provider's registration_endpoint)
    /// and delete it at the end (RFC 7592).
    #[arg(long)]
    register: bool,
    /// The initial access token the registration endpoint asks for; also from
    /// CANDOR_FLOW_INITIAL_ACCESS_TOKEN.
    #[arg(long, requires = "register", env = "CANDOR_FLOW_INITIAL_ACCESS_TOKEN", hide_env_values = true)]
    initial_access_token: Option<String>,
    /// For confidential clients; also from CANDOR_FLOW_CLIENT_SECRET (keeps it out of shell history).
    #[arg(long, env = "CANDOR_FLOW_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    #[arg(long, default_value = "openid profile email")]
    scope: String,
    /// Registered redirect URI to use instead of a loopback listener on 127.0.0.1 (RFC 8252).
    #[arg(long)]
    redirect_uri: Option<String>,
    /// Non-interactive: the URL the browser landed on, pasted.
    #[arg(long)]
    callback_url: Option<String>,
    /// Non-interactive, Candor providers: sign in through the login form as this user.
    #[arg(long, requires = "login_password")]
    login_user: Option<String>,
    #[arg(long, env = "CANDOR_FLOW_LOGIN_PASSWORD", hide_env_values = true)]
    login_password: Option<String>,
    /// Open the authorize URL in the default browser.
    #[arg(long)]
    open: bool,
    /// Use DPoP (RFC 9449): a fresh key pair, a proof with every token and userinfo request,
    /// and a check that the provider bound the tokens to it.
    #[arg(long)]
    dpop: bool,
    /// A resource indicator (RFC 8707) to request the access token for; the token is then
    /// checked as that resource would (a JWT access token per RFC 9068).
    #[arg(long)]
    resource: Option<String>,
    /// After the exchange, refresh once and check the rotation.
    #[arg(long)]
    refresh: bool,
    /// Run the device authorization grant (RFC 8628) instead: show the user code, poll as the
    /// RFC says (interval, slow_down) and check the tokens; with --login-user, Candor's
    /// verification page is driven too.
    #[arg(long, conflicts_with_all = ["redirect_uri", "callback_url", "open"])]
    device: bool,
    /// End with RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the ID token as
    /// hint; with --login-user the request is sent and its answer checked, otherwise the URL is
    /// shown.
    #[arg(long)]
    logout: bool,
    /// Where the provider should send the browser after --logout (registered with it).
    #[arg(long, requires = "logout")]
    post_logout_redirect_uri: Option<String>,
    /// Seconds to wait for the browser (or, with --device, for the user's decision).
    #[arg(long, default_value_t = 300)]
    wait: u64,
}

async fn flow(args: FlowArgs) -> Result<bool, String> {
    let options = candor_client::flow::Options {
        issuer: args.issuer,
        client_id: args.client_id.unwrap_or_default(),
        client_secret: args.client_secret,
        scope: args.scope,
        redirect_uri: args.redirect_uri,
        callback_url: args.callback_url,
        login: args.login_user.zip(args.login_password),
        open_browser: args.open,
        refresh: args.refresh,
        wait: std::time::Duration::from_secs(args.wait),
        resource: args.resource,
        dpop: args.dpop,
        device: args.device,
        logout: args.logout,
        post_logout_redirect_uri: args.post_logout_redirect_uri,
        register: args.register,
        initial_access_token: args.initial_access_token,
    };
    let mut printer = candor_client::flow::Printer { lines: Vec::new(), echo: true };
    let ok = candor_client::flow::run(&options, &mut printer).await?;
    println!("{}", if ok { "\nflow completed: every step passed" } else { "\nflow failed: see FAIL above" });
    Ok(ok)
}

#[derive(Args)]
struct DoctorArgs {
    /// The URL the app opened for /authorize.
    #[arg(long)]
    authorize_url: Option<String>,
    /// The URL the browser landed on after login.
    #[arg(long)]
    callback_url: Option<String>,
    /// The token request: a curl command line, a raw HTTP request or key=value lines; `@FILE` reads
    /// a file, `-` standard input. Repeat it for a retry or a later refresh of the same flow.
    #[arg(long = "token-request")]
    token_requests: Vec<String>,
    /// The provider's discovery document (a file).
    #[arg(long)]
    discovery: Option<PathBuf>,
    /// When the callback arrived (RFC 3339 or Unix seconds).
    #[arg(long)]
    callback_at: Option<String>,
    /// When the token request was sent (RFC 3339 or Unix seconds).
    #[arg(long)]
    token_at: Option<String>,
    /// The provider's code lifetime in seconds.
    #[arg(long, default_value_t = 60)]
    code_lifetime: i64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

fn read_arg(value: &str) -> Result<String, String> {
    if value == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| format!("stdin: {e}"))?;
        Ok(s)
    } else if let Some(path) = value.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
    } else {
        Ok(value.to_string())
    }
}

fn doctor(args: DoctorArgs) -> Result<bool, String> {
    use candor_client::doctor::{Input, diagnose};
    let time = |v: &Option<String>, name: &str| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|t| {
                candor_core::clock::parse_time(t)
                    .ok_or_else(|| format!("--{name}: {t:?} is neither RFC 3339 nor Unix seconds"))
            })
            .transpose()
    };
    let mut requests = args.token_requests.iter().map(|t| read_arg(t)).collect::<Result<Vec<_>, _>>()?;
    if args.authorize_url.is_none() && args.callback_url.is_none() && requests.is_empty() {
        return Err("give at least one of --authorize-url, --callback-url, --token-request".into());
    }
    let discovery = match &args.discovery {
        Some(p) => Some(
            serde_json::from_str(&std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)
                .map_err(|e| format!("{}: not JSON: {e}", p.display()))?,
        ),
        None => None,
    };
    let first = if requests.is_empty() { None } else { Some(requests.remove(0)) };
    let report = diagnose(&Input {
        authorize_url: args.authorize_url.clone(),
        callback_url: args.callback_url.clone(),
        token_request: first,
        more_token_requests: requests,
        discovery,
        callback_at: time(&args.callback_at, "callback-at")?,
        token_at: time(&args.token_at, "token-at")?,
        code_lifetime: Some(args.code_lifetime),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", report.render());
    }
    Ok(report.errors() == 0)
}

#[derive(Args)]
struct StoreArgs {
    /// Store URL (default: the store of --config, else the dev store ./.candor/dev.db).
    #[arg(long, global = true, env = "CANDOR_STORE")]
    store: Option<String>,
    /// Read the store URL from this config file.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
}

impl StoreArgs {
    fn url(&self) -> Result<String, String> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        if let Some(path) = &self.config {
            return Ok(config::Config::load(path, &|k| std::env::var(k).ok())?.store);
        }
        Ok(dev::default_store_url())
    }

    async fn open(&self) -> Result<Arc<dyn Store>, String> {
        let url = self.url()?;
        if let Some(path) = url.strip_prefix("sqlite://")
            && let Some(dir) = std::path::Path::new(path.split('?').next().unwrap_or(path)).parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            return Err(format!(
                "store {url}: directory {} does not exist (start `candor dev` or `candor serve` first)",
                dir.display()
            ));
        }
        Ok(candor_store::open(&url)
            .await
            .map_err(|e| format!("store {}: {e}", candor_store::redacted(&url)))?
            .into_store())
    }
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    GrantType::ALL.into_iter().find(|g| g.short_name() == s || g.as_str() == s).ok_or_else(|| {
        format!("unknown grant {s:?}: authorization_code, refresh_token, client_credentials or device_code")
    })
}
fn parse_method(s: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(s).ok_or_else(|| {
        format!(
            "unknown method {s:?}: client_secret_basic, client_secret_post, private_key_jwt, client_secret_jwt or none"
        )
    })
}
fn parse_format(s: &str) -> Result<TokenFormat, String> {
    TokenFormat::parse(s).ok_or_else(|| format!("unknown format {s:?}: opaque or jwt"))
}
fn parse_alg(s: &str) -> Result<SigningAlg, String> {
    SigningAlg::parse(s).ok_or_else(|| format!("unknown algorithm {s:?}: RS256, ES256 or EdDSA"))
}

/// `candor client add`'s options.
#[derive(clap::Args)]
struct ClientAdd {
    /// Display name shown on the consent page.
    #[arg(long)]
    name: String,
    /// Client id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    public: bool,
    /// Registered redirect URI (repeatable). Exact match; http loopback IPs accept any port.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Allowed grant (repeatable; default authorization_code and refresh_token).
    #[arg(long = "grant", value_parser = parse_grant)]
    grants: Vec<GrantType>,
    /// Token endpoint auth method (default client_secret_basic; none for public clients;
    /// private_key_jwt with --jwks; client_secret_jwt with CANDOR_CLIENT_ASSERTION_SECRET_KEY set).
    #[arg(long = "auth-method", value_parser = parse_method)]
    auth_method: Option<AuthMethod>,
    /// A file holding the client's public keys as a JWK Set, for private_key_jwt.
    #[arg(long)]
    jwks: Option<std::path::PathBuf>,
    /// Accept only pushed authorization requests (RFC 9126) from this client.
    #[arg(long)]
    require_par: bool,
    /// A registered resource (RFC 8707) the client may request tokens for (repeatable).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// Every token request must carry a DPoP proof (RFC 9449): all its tokens are sender-constrained.
    #[arg(long)]
    require_dpop: bool,
    /// Where the browser may return after a logout the client starts (repeatable; exact match).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Where Candor posts a logout token when a session the client signed in to ends.
    #[arg(long = "backchannel-logout-uri")]
    backchannel_logout_uri: Option<String>,
    /// The logout token must carry the session id (`sid`).
    #[arg(long)]
    backchannel_logout_session_required: bool,
    /// Format of its access tokens that are for no resource: opaque or jwt (RFC 9068).
    #[arg(long = "access-token-format", value_parser = parse_format, default_value = "opaque")]
    access_token_format: TokenFormat,
    /// Allowed scope (repeatable; default openid profile email offline_access).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Do not require PKCE (confidential clients only).
    #[arg(long)]
    no_pkce: bool,
    /// Accept code_challenge_method=plain.
    #[arg(long)]
    allow_plain_pkce: bool,
    /// ID token signing algorithm.
    #[arg(long = "id-token-alg", value_parser = parse_alg, default_value = "RS256")]
    id_token_alg: SigningAlg,
    /// Issue refresh tokens even without offline_access.
    #[arg(long)]
    always_refresh: bool,
}

impl ClientAdd {
    fn into_spec(self) -> Result<ClientSpec, String> {
        let jwks = match &self.jwks {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("--jwks {}: {e}", path.display()))?;
                Some(serde_json::from_str(&text).map_err(|e| format!("--jwks {}: not JSON: {e}", path.display()))?)
            }
        };
        Ok(ClientSpec {
            id: self.id,
            name: self.name,
            public: self.public,
            redirect_uris: self.redirect_uris,
            grant_types: if self.grants.is_empty() {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else {
                self.grants
            },
            auth_method: self.auth_method,
            scopes: if self.scopes.is_empty() { admin::default_scopes() } else { self.scopes },
            require_pkce: !self.no_pkce,
            allow_plain_pkce: self.allow_plain_pkce,
            id_token_alg: self.id_token_alg,
            always_issue_refresh_token: self.always_refresh,
            jwks,
            require_par: self.require_par,
            access_token_format: self.access_token_format,
            resources: self.resources,
            require_dpop: self.require_dpop,
            logout: ClientLogout {
                post_logout_redirect_uris: self.post_logout_redirect_uris,
                backchannel_uri: self.backchannel_logout_uri,
                backchannel_session_required: self.backchannel_logout_session_required,
            },
        })
    }
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client. A confidential client's secret is generated and shown once.
    Add(Box<ClientAdd>),
    /// List clients.
    List,
    /// Show one client.
    Show { id: String },
    /// Remove a client and revoke its tokens.
    Remove { id: String },
    /// Generate a new secret; the old one stops working.
    RotateSecret { id: String },
}

#[derive(Subcommand)]
enum ResourceCommand {
    /// Register a resource: its indicator (an absolute URI, the `aud` of its tokens), its scopes
    /// and how its access tokens are made.
    Add {
        /// The resource indicator clients send as `resource`, e.g. https://api.example.com/.
        #[arg(long)]
        id: String,
        /// Display name (default: the indicator).
        #[arg(long)]
        name: Option<String>,
        /// A scope the resource understands (repeatable); its tokens carry the granted ones.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Access token format: jwt (RFC 9068, verifiable by the resource itself) or opaque.
        #[arg(long, value_parser = parse_format, default_value = "jwt")]
        format: TokenFormat,
        /// Access token lifetime in seconds (default: the provider's).
        #[arg(long)]
        lifetime: Option<i64>,
        /// Signing algorithm of its JWT access tokens.
        #[arg(long, value_parser = parse_alg, default_value = "RS256")]
        alg: SigningAlg,
    },
    /// List resources.
    List,
    /// Remove a resource: clients lose it, its access tokens are revoked.
    Remove { id: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (password generated and shown once unless given).
    Add {
        username: String,
        #[arg(long, env = "CANDOR_NEW_PASSWORD")]
        password: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    List,
    /// Set a new password (generated unless given).
    SetPassword {
        username: String,
        #[arg(long, env = "CANDOR_NEW_PASSWORD")]
        password: Option<String>,
    },
    /// Disable a user: sessions end, grants stop working.
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
    /// Remove a user and revoke their tokens.
    Remove {
        username: String,
    },
    /// Withdraw the user's consent for a client: its access tokens are revoked now, its refresh
    /// tokens are refused (`consent_revoked`) at their next use.
    RevokeConsent {
        username: String,
        client_id: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    List,
    /// Add new signing keys (all algorithms, or one); old keys stay published until their tokens expire.
    Rotate {
        #[arg(long, value_parser = parse_alg)]
        alg: Option<SigningAlg>,
    },
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Serve { config } => dev::serve(&config).await,
        Command::Client { store, command } => {
            let store = store.open().await?;
            let store = store.as_ref();
            match command {
                ClientCommand::Add(add) => admin::client_add(store, add.into_spec()?).await,
                ClientCommand::List => admin::client_list(store).await,
                ClientCommand::Show { id } => admin::client_show(store, &id).await,
                ClientCommand::Remove { id } => admin::client_remove(store, &id).await,
                ClientCommand::RotateSecret { id } => admin::client_rotate_secret(store, &id).await,
            }
        }
        Command::Resource { store, command } => {
            let store = store.open().await?;
            let store = store.as_ref();
            match command {
                ResourceCommand::Add { id, name, scopes, format, lifetime, alg } => {
                    let spec = admin::ResourceSpec { id, name, scopes, format, lifetime, alg };
                    admin::resource_add(store, spec).await
                }
                ResourceCommand::List => admin::resource_list(store).await,
                ResourceCommand::Remove { id } => admin::resource_remove(store, &id).await,
            }
        }
        Command::User { store, command } => {
            let store = store.open().await?;
            let store = store.as_ref();
            match command {
                UserCommand::Add { username, password, name, email } => {
                    admin::user_add(store, &username, password, name, email, false).await.map(|_| ())
                }
                UserCommand::List => admin::user_list(store).await,
                UserCommand::SetPassword { username, password } => {
                    admin::user_set_password(store, &username, password).await
                }
                UserCommand::Disable { username } => admin::user_set_disabled(store, &username, true).await,
                UserCommand::Enable { username } => admin::user_set_disabled(store, &username, false).await,
                UserCommand::Remove { username } => admin::user_remove(store, &username).await,
                UserCommand::RevokeConsent { username, client_id } => {
                    admin::user_revoke_consent(store, &username, &client_id).await
                }
            }
        }
        Command::Migrate { store } => {
            let url = store.url()?;
            let s = candor_store::open_with(&url, candor_store::Schema::Migrate)
                .await
                .map_err(|e| format!("store {}: {e}", candor_store::redacted(&url)))?;
            let versions = s.migrate().await.map_err(|e| format!("store {}: {e}", candor_store::redacted(&url)))?;
            println!(
                "store {}: schema at migration {} ({} applied)",
                candor_store::redacted(&url),
                versions.last().copied().unwrap_or(0),
                versions.len()
            );
            Ok(())
        }
        Command::Flow(args) => {
            if flow(args).await? {
                Ok(())
            } else {
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::process::exit(1)
            }
        }
        Command::Doctor(args) => {
            if doctor(args)? {
                Ok(())
            } else {
                // Problems found: exit 1, like a linter, so CI can gate on it.
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::process::exit(1)
            }
        }
        Command::Explain { trace_id, json, store } => {
            let store = store.open().await?;
            let trace_id = trace_id.trim().trim_start_matches("[trace ").trim_end_matches(']');
            match candor_core::audit::explain(store.as_ref(), trace_id, true, true).await.map_err(|e| e.to_string())? {
                Some(e) if json => {
                    println!("{}", serde_json::to_string_pretty(&e.to_json()).map_err(|e| e.to_string())?);
                    Ok(())
                }
                Some(e) => {
                    print!("{}", e.render_text());
                    Ok(())
                }
                None => Err(format!(
                    "no trace {trace_id} in this store (is it the store the server uses? traces are kept {} days)",
                    candor_core::settings::Settings::new("http://x").audit_retention / 86400
                )),
            }
        }
        Command::Bench(_) => Err("bench runs on its own runtime".into()),
        Command::Key { store, command } => {
            let store = store.open().await?;
            match command {
                KeyCommand::List => admin::key_list(store.as_ref()).await,
                KeyCommand::Rotate { alg } => admin::key_rotate(store.as_ref(), alg).await,
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Bench(args) = cli.command {
        return match bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("candor bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("candor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candor: {e}");
            ExitCode::FAILURE
        }
    }
}

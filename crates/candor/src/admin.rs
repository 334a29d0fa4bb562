//! The admin commands: clients, users and keys, on the same store the server uses.

use candor_core::clock::{Clock, SystemClock, rfc3339};
use candor_core::model::{AuthMethod, Client, ClientLogout, GrantType, Resource, SigningAlg, TokenFormat, User};
use candor_core::password::{generate_password, hash_password};
use candor_core::redirect_uri::validate_for_registration;
use candor_core::scope;
use candor_core::store::{Store, StoreError};
use candor_core::tokens::{Secret, SecretKind, random_id};

pub type CliResult = Result<(), String>;

fn store_err(e: StoreError) -> String {
    match e {
        StoreError::Conflict(m) => format!("already exists ({m})"),
        other => other.to_string(),
    }
}

/// What registering a client needs.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub id: Option<String>,
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub auth_method: Option<AuthMethod>,
    pub scopes: Vec<String>,
    pub require_pkce: bool,
    pub allow_plain_pkce: bool,
    pub id_token_alg: SigningAlg,
    pub always_issue_refresh_token: bool,
    /// The public keys of a `private_key_jwt` client.
    pub jwks: Option<serde_json::Value>,
    /// Authorization requests must be pushed first (RFC 9126).
    pub require_par: bool,
    /// The format of its access tokens that are for no resource.
    pub access_token_format: TokenFormat,
    /// The resources (RFC 8707) it may request tokens for; each must be registered.
    pub resources: Vec<String>,
    /// Every token request must carry a DPoP proof (RFC 9449).
    pub require_dpop: bool,
    /// Its post-logout redirect URIs and back-channel logout endpoint.
    pub logout: ClientLogout,
}

/// Builds a client; for a confidential client also returns its generated secret (shown once).
pub fn build_client(spec: ClientSpec, now: i64) -> Result<(Client, Option<String>), String> {
    for uri in &spec.redirect_uris {
        validate_for_registration(uri).map_err(|e| format!("redirect URI {uri:?}: {e}"))?;
    }
    for uri in &spec.logout.post_logout_redirect_uris {
        validate_for_registration(uri).map_err(|e| format!("post-logout redirect URI {uri:?}: {e}"))?;
    }
    if let Some(uri) = &spec.logout.backchannel_uri {
        candor_core::logout::validate_backchannel_uri(uri)
            .map_err(|e| format!("back-channel logout URI {uri:?}: {e}"))?;
    } else if spec.logout.backchannel_session_required {
        return Err("--backchannel-logout-session-required needs --backchannel-logout-uri".into());
    }
    let auth_method = match (spec.public, spec.auth_method) {
        (true, None | Some(AuthMethod::None)) => AuthMethod::None,
        (true, Some(m)) => return Err(format!("a public client authenticates with none, not {}", m.as_str())),
        (false, Some(AuthMethod::None)) => {
            return Err("a confidential client needs a secret method; use --public for none".into());
        }
        (false, Some(m)) => m,
        (false, None) => AuthMethod::ClientSecretBasic,
    };
    if spec.grant_types.contains(&GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
        return Err("authorization_code needs at least one --redirect-uri".into());
    }
    if spec.public && !spec.require_pkce {
        return Err("a public client always requires PKCE (RFC 9700 §2.1.1): drop --no-pkce".into());
    }
    if spec.public && spec.grant_types.contains(&GrantType::ClientCredentials) {
        return Err("a public client cannot use client_credentials".into());
    }
    let id = match spec.id {
        Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => id,
        Some(id) => return Err(format!("client id {id:?}: use letters, digits, '-', '_' or '.'")),
        None => random_id().map_err(|e| e.to_string())?[..20].to_string(),
    };
    match (&spec.jwks, auth_method) {
        (Some(jwks), AuthMethod::PrivateKeyJwt) => {
            candor_core::jws::check_public_jwks(jwks).map_err(|e| format!("--jwks: {e}"))?
        }
        (None, AuthMethod::PrivateKeyJwt) => {
            return Err("private_key_jwt needs the client's public keys: --jwks FILE (a JWK Set)".into());
        }
        (Some(_), m) => return Err(format!("--jwks is for private_key_jwt clients, not {}", m.as_str())),
        (None, _) => {}
    }
    // A private_key_jwt client proves itself with its key: it gets no secret.
    let secret = if auth_method.uses_secret() {
        Some(Secret::generate(SecretKind::ClientSecret).map_err(|e| e.to_string())?)
    } else {
        None
    };
    // A client_secret_jwt client's secret is the key of its assertions: kept sealed too.
    let secret_sealed = match (&secret, auth_method) {
        (Some(s), AuthMethod::ClientSecretJwt) => Some(sealing_key()?.seal(&id, &s.value)?),
        _ => None,
    };
    let client = Client {
        id,
        name: spec.name,
        secret_hash: secret.as_ref().map(|s| s.hash.clone()),
        redirect_uris: spec.redirect_uris,
        grant_types: spec.grant_types,
        auth_method,
        scopes: spec.scopes,
        require_pkce: spec.require_pkce || spec.public,
        allow_plain_pkce: spec.allow_plain_pkce,
        id_token_alg: spec.id_token_alg,
        always_issue_refresh_token: spec.always_issue_refresh_token,
        created_at: now,
        jwks: spec.jwks,
        require_par: spec.require_par,
        access_token_format: spec.access_token_format,
        resources: spec.resources,
        require_dpop: spec.require_dpop,
        logout: spec.logout,
        registration_token_hash: None,
        secret_sealed,
    };
    Ok((client, secret.map(|s| s.value)))
}

/// The key that seals client_secret_jwt secrets, from the environment (as `candor serve` reads
/// `[client_assertion] secret_key`): the command line must seal with the server's key.
fn sealing_key() -> Result<candor_core::sealed::SealingKey, String> {
    const VAR: &str = "CANDOR_CLIENT_ASSERTION_SECRET_KEY";
    let text = std::env::var(VAR).map_err(|_| {
        format!("client_secret_jwt seals the client's secret with the server's key: set {VAR} to the server's [client_assertion] secret_key")
    })?;
    candor_core::sealed::SealingKey::parse(&text).map_err(|e| format!("{VAR}: {e}"))
}

pub fn default_scopes() -> Vec<String> {
    scope::STANDARD.iter().map(|s| s.to_string()).collect()
}

pub fn describe_client(c: &Client) -> String {
    format!(
        "client_id:        {}\nname:             {}\ntype:             {}\nauth method:      {}\nredirect URIs:    {}\ngrant types:      {}\nscopes:           {}\nPKCE:             {}{}\nID token alg:     {}\nrefresh tokens:   {}\nPAR:              {}\naccess tokens:    {}\nresources:        {}\nDPoP:             {}\npost-logout URIs: {}\nback-channel:     {}\nregistered by:    {}\ncreated:          {}",
        c.id,
        c.name,
        if c.is_public() { "public" } else { "confidential" },
        c.auth_method.as_str(),
        if c.redirect_uris.is_empty() { "(none)".to_string() } else { c.redirect_uris.join(" ") },
        c.grant_types.iter().map(|g| g.short_name()).collect::<Vec<_>>().join(" "),
        c.scopes.join(" "),
        if c.pkce_required() { "required" } else { "optional" },
        if c.allow_plain_pkce { " (plain allowed)" } else { " (S256 only)" },
        c.id_token_alg.as_str(),
        if c.always_issue_refresh_token { "always" } else { "with offline_access" },
        if c.require_par { "required" } else { "optional" },
        c.access_token_format.as_str(),
        if c.resources.is_empty() { "(none)".to_string() } else { c.resources.join(" ") },
        if c.require_dpop { "required (every token is DPoP-bound)" } else { "optional" },
        if c.logout.post_logout_redirect_uris.is_empty() {
            "(none)".to_string()
        } else {
            c.logout.post_logout_redirect_uris.join(" ")
        },
        match &c.logout.backchannel_uri {
            None => "(none)".to_string(),
            Some(uri) if c.logout.backchannel_session_required => format!("{uri} (sid required)"),
            Some(uri) => uri.clone(),
        },
        if c.registration_token_hash.is_some() {
            "itself at /register (RFC 7591); it manages its registration with its registration access token"
        } else {
            "an administrator"
        },
        rfc3339(c.created_at),
    )
}

pub async fn client_add(store: &dyn Store, spec: ClientSpec) -> CliResult {
    for id in &spec.resources {
        if store.resource(id).await.map_err(store_err)?.is_none() {
            return Err(format!("--resource {id}: no such resource; register it first with `candor resource add`"));
        }
    }
    let (client, secret) = build_client(spec, SystemClock.now())?;
    store.insert_client(&client).await.map_err(|e| format!("client {}: {}", client.id, store_err(e)))?;
    println!("{}", describe_client(&client));
    if let Some(s) = secret {
        println!("client_secret:    {s}\n\nThe secret is shown once and stored only as a hash. Keep it now.");
    }
    Ok(())
}

pub async fn client_list(store: &dyn Store) -> CliResult {
    let clients = store.list_clients().await.map_err(store_err)?;
    if clients.is_empty() {
        println!("no clients");
    }
    for c in clients {
        println!(
            "{:<24} {:<12} {:<20} {}",
            c.id,
            if c.is_public() { "public" } else { "confidential" },
            c.grant_types.iter().map(|g| g.short_name()).collect::<Vec<_>>().join(","),
            c.name
        );
    }
    Ok(())
}

pub async fn client_show(store: &dyn Store, id: &str) -> CliResult {
    let c = store.client(id).await.map_err(store_err)?.ok_or_else(|| format!("no client {id:?}"))?;
    println!("{}", describe_client(&c));
    Ok(())
}

pub async fn client_remove(store: &dyn Store, id: &str) -> CliResult {
    if store.remove_client(id, SystemClock.now()).await.map_err(store_err)? {
        println!("removed client {id} and revoked its tokens");
        Ok(())
    } else {
        Err(format!("no client {id:?}"))
    }
}

pub async fn client_rotate_secret(store: &dyn Store, id: &str) -> CliResult {
    let c = store.client(id).await.map_err(store_err)?.ok_or_else(|| format!("no client {id:?}"))?;
    if c.is_public() {
        return Err(format!("{id} is a public client: it has no secret"));
    }
    let secret = Secret::generate(SecretKind::ClientSecret).map_err(|e| e.to_string())?;
    if c.auth_method == AuthMethod::ClientSecretJwt {
        let sealed = sealing_key()?.seal(id, &secret.value)?;
        let rotated = Client { secret_hash: Some(secret.hash.clone()), secret_sealed: Some(sealed), ..c };
        store.update_client(&rotated).await.map_err(store_err)?;
    } else {
        store.set_client_secret(id, &secret.hash).await.map_err(store_err)?;
    }
    println!("client_secret: {}\n\nThe old secret no longer works. The new one is shown once.", secret.value);
    Ok(())
}

/// What registering a resource needs.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    pub id: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub format: TokenFormat,
    pub lifetime: Option<i64>,
    pub alg: SigningAlg,
}

pub fn build_resource(spec: ResourceSpec, now: i64) -> Result<Resource, String> {
    candor_core::resource::check_indicator(&spec.id).map_err(|r| {
        format!(
            "{:?}: {}",
            spec.id,
            r.facts.get("problem").and_then(|p| p.as_str()).unwrap_or("not a resource indicator")
        )
    })?;
    let scope = candor_core::scope::Scope::parse(&spec.scopes.join(" ")).map_err(|r| {
        format!("--scope: {}", r.facts.get("problem").and_then(|p| p.as_str()).unwrap_or("not a scope token"))
    })?;
    if let Some(l) = spec.lifetime
        && !(1..=86_400).contains(&l)
    {
        return Err(format!("--lifetime {l}: between 1 and 86400 seconds"));
    }
    Ok(Resource {
        name: spec.name.unwrap_or_else(|| spec.id.clone()),
        id: spec.id,
        scopes: scope.iter().map(str::to_string).collect(),
        access_token_format: spec.format,
        access_token_lifetime: spec.lifetime,
        signing_alg: spec.alg,
        created_at: now,
    })
}

pub fn describe_resource(r: &Resource) -> String {
    format!(
        "resource:         {}\nname:             {}\nscopes:           {}\naccess tokens:    {}{}\nlifetime:         {}\ncreated:          {}",
        r.id,
        r.name,
        if r.scopes.is_empty() { "(none)".to_string() } else { r.scopes.join(" ") },
        r.access_token_format.as_str(),
        if r.access_token_format == TokenFormat::Jwt {
            format!(" (RFC 9068, {})", r.signing_alg.as_str())
        } else {
            String::new()
        },
        r.access_token_lifetime.map_or("the provider's access token lifetime".to_string(), |l| format!("{l} s")),
        rfc3339(r.created_at),
    )
}

pub async fn resource_add(store: &dyn Store, spec: ResourceSpec) -> CliResult {
    let resource = build_resource(spec, SystemClock.now())?;
    store.insert_resource(&resource).await.map_err(|e| format!("resource {}: {}", resource.id, store_err(e)))?;
    println!("{}", describe_resource(&resource));
    println!("\nClients request its tokens with resource={} once registered with --resource.", resource.id);
    Ok(())
}

pub async fn resource_list(store: &dyn Store) -> CliResult {
    let resources = store.list_resources().await.map_err(store_err)?;
    if resources.is_empty() {
        println!("no resources");
    }
    for r in resources {
        println!("{}\n", describe_resource(&r));
    }
    Ok(())
}

pub async fn resource_remove(store: &dyn Store, id: &str) -> CliResult {
    if store.remove_resource(id, SystemClock.now()).await.map_err(store_err)? {
        println!("removed resource {id}, took it off every client and revoked the access tokens issued for it");
        Ok(())
    } else {
        Err(format!("no resource {id:?}"))
    }
}

pub async fn user_add(
    store: &dyn Store,
    username: &str,
    password: Option<String>,
    name: Option<String>,
    email: Option<String>,
    quiet: bool,
) -> Result<String, String> {
    if username.is_empty() || username.len() > 128 || username.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("username {username:?}: 1-128 characters, no spaces or control characters"));
    }
    let (password, generated) = match password {
        Some(p) if p.len() >= 8 => (p, false),
        Some(_) => return Err("password: at least 8 characters".into()),
        None => (generate_password().map_err(|e| e.to_string())?, true),
    };
    let user = User {
        id: random_id().map_err(|e| e.to_string())?,
        username: username.to_string(),
        password_hash: hash_password(&password).map_err(|e| e.to_string())?,
        name,
        email: email.clone(),
        email_verified: false,
        disabled: false,
        created_at: SystemClock.now(),
    };
    store.insert_user(&user).await.map_err(|e| format!("user {username}: {}", store_err(e)))?;
    if !quiet {
        println!("user {} (sub {})", user.username, user.id);
        if generated {
            println!("password: {password}\n(shown once; stored only as an argon2id hash)");
        }
    }
    Ok(password)
}

async fn find_user(store: &dyn Store, username: &str) -> Result<User, String> {
    store.user_by_username(username).await.map_err(store_err)?.ok_or_else(|| format!("no user {username:?}"))
}

pub async fn user_list(store: &dyn Store) -> CliResult {
    let users = store.list_users().await.map_err(store_err)?;
    if users.is_empty() {
        println!("no users");
    }
    for u in users {
        println!(
            "{:<24} {:<34} {:<9} {}",
            u.username,
            u.id,
            if u.disabled { "disabled" } else { "active" },
            u.email.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn user_set_password(store: &dyn Store, username: &str, password: Option<String>) -> CliResult {
    let user = find_user(store, username).await?;
    let (password, generated) = match password {
        Some(p) if p.len() >= 8 => (p, false),
        Some(_) => return Err("password: at least 8 characters".into()),
        None => (generate_password().map_err(|e| e.to_string())?, true),
    };
    store.set_password(&user.id, &hash_password(&password).map_err(|e| e.to_string())?).await.map_err(store_err)?;
    println!("password of {username} changed");
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

pub async fn user_set_disabled(store: &dyn Store, username: &str, disabled: bool) -> CliResult {
    let user = find_user(store, username).await?;
    store.set_disabled(&user.id, disabled).await.map_err(store_err)?;
    println!(
        "{username} {}",
        if disabled { "disabled; their sessions ended and their grants stop working" } else { "enabled" }
    );
    Ok(())
}

pub async fn user_remove(store: &dyn Store, username: &str) -> CliResult {
    let user = find_user(store, username).await?;
    store.remove_user(&user.id, SystemClock.now()).await.map_err(store_err)?;
    println!("removed {username}; their tokens are revoked");
    Ok(())
}

pub async fn user_revoke_consent(store: &dyn Store, username: &str, client_id: &str) -> CliResult {
    let user = find_user(store, username).await?;
    if store.revoke_consent(&user.id, client_id, SystemClock.now()).await.map_err(store_err)? {
        println!(
            "consent of {username} for {client_id} withdrawn; its access tokens are revoked, its refresh tokens will be refused"
        );
        Ok(())
    } else {
        Err(format!("{username} has no consent on record for {client_id}"))
    }
}

pub async fn key_list(store: &dyn Store) -> CliResult {
    let keys = store.keys().await.map_err(store_err)?;
    if keys.is_empty() {
        println!("no keys yet: they are generated when the server first starts (or with `candor key rotate`)");
    }
    for k in keys {
        println!(
            "{:<18} {:<6} created {}  {}",
            k.kid,
            k.alg.as_str(),
            rfc3339(k.created_at),
            k.retired_at.map_or("active".to_string(), |r| format!("retired {}", rfc3339(r)))
        );
    }
    Ok(())
}

pub async fn key_rotate(store: &dyn Store, alg: Option<SigningAlg>) -> CliResult {
    let algs: Vec<SigningAlg> = alg.map_or(SigningAlg::ALL.to_vec(), |a| vec![a]);
    let kids = candor_server::rotate_keys(store, &algs, SystemClock.now()).await.map_err(|e| e.to_string())?;
    for (alg, kid) in algs.iter().zip(kids) {
        println!("new {} key {kid}", alg.as_str());
    }
    println!(
        "Running servers sign with the new keys within 10 seconds; the old keys stay in JWKS until the tokens they signed expire."
    );
    Ok(())
}

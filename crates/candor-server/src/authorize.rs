//! GET|POST /authorize and the interaction that follows it: login, consent, code.

use crate::cookies;
use crate::html::{esc, page};
use crate::respond::{Trace, error_page, html, redirect, redirect_error, see_other};
use crate::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use candor_core::authorize::{self, AuthorizationRequest, AuthorizeFailure, LoggedIn, Next};
use candor_core::device::DeviceRequest;
use candor_core::model::{InteractionRecord, SessionRecord};
use candor_core::params::{Encoding, Params};
use candor_core::password::dummy_hash;
use candor_core::rejection::{Reason, Rejection};
use candor_core::scope;
use candor_core::tokens::{Secret, SecretKind, b64url, hash_secret, hashes_equal};
use std::sync::Arc;

type AppStateRef = State<Arc<AppState>>;

pub async fn get(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match Params::from_urlencoded(q.unwrap_or_default().as_bytes(), Encoding::Query) {
        Ok(p) => start(&state, &trace, &headers, p).await,
        Err(r) => error_page(&state, &r, &trace),
    }
}

/// OIDC Core §3.1.2.1: "Authorization Servers MUST support the use of the HTTP GET and POST methods".
pub async fn post(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    match read_form(&headers, body) {
        Ok(p) => start(&state, &trace, &headers, p).await,
        Err(r) => error_page(&state, &r, &trace),
    }
}

/// The parameters of a form a browser posted (`application/x-www-form-urlencoded` only).
pub fn read_form(headers: &HeaderMap, body: crate::respond::Body) -> Result<Params, Rejection> {
    parse_form(headers, &crate::respond::read_body(body)?)
}

/// A form body already read: its parameters, if its content type says it is a form.
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, Rejection> {
    if !is_form(headers) {
        return Err(Rejection::new(Reason::ContentTypeUnsupported).with("content_type", content_type(headers)));
    }
    Params::from_urlencoded(body, Encoding::Form)
}

pub fn content_type(headers: &HeaderMap) -> String {
    headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none").to_string()
}

pub fn is_form(headers: &HeaderMap) -> bool {
    content_type(headers)
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// A logged-in browser: its user, when they logged in, and the session's public id.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub(crate) user_id: String,
    pub(crate) auth_time: i64,
    pub(crate) sid: Option<String>,
}

/// This browser's session, if its cookie names one that has not expired.
pub(crate) async fn current_session(state: &AppState, headers: &HeaderMap) -> Result<Option<SessionRecord>, Rejection> {
    let Some(cookie) = cookies::get(headers, cookies::SESSION) else { return Ok(None) };
    let session = state.store.session(&hash_secret(&cookie)).await.map_err(Rejection::store)?;
    Ok(session.filter(|s| s.expires_at > state.now()))
}

/// The logged-in user of this browser, if its session is valid and the user enabled.
pub(crate) async fn current_login(state: &AppState, headers: &HeaderMap) -> Result<Option<Login>, Rejection> {
    let Some(session) = current_session(state, headers).await? else { return Ok(None) };
    match state.store.user(&session.user_id).await.map_err(Rejection::store)? {
        Some(u) if !u.disabled => Ok(Some(Login { user_id: u.id, auth_time: session.auth_time, sid: session.sid })),
        _ => Ok(None),
    }
}

/// RFC 9126 §4: the pushed request a `request_uri` stands for, taken for this use.
async fn pushed_request(state: &AppState, params: &Params, request_uri: &str, now: i64) -> Result<Params, Rejection> {
    let client_id = params.get("client_id")?.ok_or_else(|| {
        Rejection::missing("client_id").with("problem", "a request_uri is sent with the client_id that pushed it")
    })?;
    let hash = candor_core::par::request_uri_hash(request_uri)?;
    let taking = state.store.take_pushed_request(&hash, now).await.map_err(Rejection::store)?;
    candor_core::par::resolve(taking, request_uri, client_id, now)
}

async fn start(state: &AppState, trace: &Trace, headers: &HeaderMap, params: Params) -> Response {
    let now = state.now();
    // A pushed request: only its parameters count (RFC 9126 §4).
    let (params, pushed) = match params.get("request_uri") {
        Ok(Some(uri)) => match pushed_request(state, &params, uri, now).await {
            Ok(p) => (p, true),
            Err(r) => return error_page(state, &r, trace),
        },
        Ok(None) => (params, false),
        Err(r) => return error_page(state, &r, trace),
    };
    let client = match params.get("client_id") {
        Ok(Some(id)) => match state.store.client(id).await {
            Ok(c) => c,
            Err(e) => return error_page(state, &Rejection::store(e), trace),
        },
        _ => None,
    };
    let req = match authorize::validate(&params, client.as_ref(), now) {
        Ok(req) => req,
        Err(AuthorizeFailure::Page(r)) => return error_page(state, &r, trace),
        Err(AuthorizeFailure::Redirect { rejection, redirect_uri, state: s }) => {
            return redirect_error(state, &rejection, trace, &redirect_uri, s.as_deref());
        }
    };
    if let Some(c) = &client
        && let Err(r) = candor_core::par::check_required(c, pushed)
    {
        return redirect_error(state, &r, trace, &req.redirect_uri, req.state.as_deref());
    }
    let login = match current_login(state, headers).await {
        Ok(l) => l,
        Err(r) => return redirect_error(state, &r, trace, &req.redirect_uri, req.state.as_deref()),
    };
    let consented = match &login {
        Some(l) => match state.store.consent(&l.user_id, &req.client_id).await {
            Ok(c) => c,
            Err(e) => {
                return redirect_error(state, &Rejection::store(e), trace, &req.redirect_uri, req.state.as_deref());
            }
        },
        None => Vec::new(),
    };
    let logged_in =
        login.as_ref().map(|l| LoggedIn { user_id: &l.user_id, auth_time: l.auth_time, during_this_request: false });
    let sid = login.as_ref().and_then(|l| l.sid.clone());
    match authorize::decide(&req, logged_in, &consented, false, now) {
        Next::Issue { user_id, auth_time } => {
            issue(state, trace, &req, &Login { user_id, auth_time, sid }, false).await
        }
        Next::Fail(r) => redirect_error(state, &r, trace, &req.redirect_uri, req.state.as_deref()),
        Next::Login => begin_interaction(state, trace, headers, &req, None).await,
        Next::Consent { .. } => begin_interaction(state, trace, headers, &req, login).await,
    }
}

/// Issues a code, stores it (durably) and sends the browser to the client with `code`, `state`, `iss`.
async fn issue(
    state: &AppState,
    trace: &Trace,
    req: &AuthorizationRequest,
    login: &Login,
    after_post: bool,
) -> Response {
    let now = state.now();
    let (code, record) = match authorize::issue_code(
        req,
        &login.user_id,
        login.auth_time,
        login.sid.as_deref(),
        &state.settings,
        now,
        &trace.0,
    ) {
        Ok(v) => v,
        Err(r) => return redirect_error(state, &r, trace, &req.redirect_uri, req.state.as_deref()),
    };
    if let Err(e) = state.store.insert_code(&record).await {
        return redirect_error(state, &Rejection::store(e), trace, &req.redirect_uri, req.state.as_deref());
    }
    tracing::info!(trace = %trace.0, client = %req.client_id, "authorization code issued");
    let mut params: Vec<(&str, &str)> = vec![("code", &code.value)];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.settings.issuer));
    let location = authorize::redirect_to(&req.redirect_uri, &params);
    // RFC 9700 §4.11: after a form POST that carried credentials, 303 makes the browser drop the body.
    if after_post { see_other(&location) } else { redirect(&location) }
}

/// The CSRF token of an interaction's forms: derived from the HttpOnly browser cookie and the
/// interaction id, so another site can neither read nor forge it.
pub(crate) fn csrf_token(browser: &str, interaction: &str) -> String {
    b64url(hash_secret(&format!("csrf\0{browser}\0{interaction}")).as_bytes().get(..32).unwrap_or_default())
}

async fn begin_interaction(
    state: &AppState,
    trace: &Trace,
    headers: &HeaderMap,
    req: &AuthorizationRequest,
    login: Option<Login>,
) -> Response {
    match new_interaction(state, headers, &Pending::Authorize(req.clone()), login).await {
        Ok(response) => response,
        Err(r) => redirect_error(state, &r, trace, &req.redirect_uri, req.state.as_deref()),
    }
}

/// The browser's binding cookie: the one it has, or a new one (to be set on the response).
pub(crate) fn browser_cookie(headers: &HeaderMap) -> Result<(String, bool), Rejection> {
    match cookies::get(headers, cookies::BROWSER).filter(|b| b.len() >= 32 && b.len() <= 128) {
        Some(b) => Ok((b, false)),
        None => Ok((Secret::generate(SecretKind::Session).map_err(|_| Rejection::internal())?.value, true)),
    }
}

/// Stores an interaction bound to this browser (and to `login`, if the user is logged in) and
/// sends the browser to its page.
pub(crate) async fn new_interaction(
    state: &AppState,
    headers: &HeaderMap,
    pending: &Pending,
    login: Option<Login>,
) -> Result<Response, Rejection> {
    let now = state.now();
    let (browser, new_browser) = browser_cookie(headers)?;
    let id = Secret::generate(SecretKind::Interaction).map_err(|_| Rejection::internal())?;
    let record = InteractionRecord {
        hash: id.hash.clone(),
        request: pending.to_json()?,
        browser_hash: hash_secret(&browser),
        csrf_hash: hash_secret(&csrf_token(&browser, &id.value)),
        login_user_id: login.as_ref().map(|l| l.user_id.clone()),
        login_time: login.as_ref().map(|l| l.auth_time),
        login_sid: login.and_then(|l| l.sid),
        created_at: now,
        expires_at: now + state.settings.interaction_lifetime,
    };
    state.store.insert_interaction(&record).await.map_err(Rejection::store)?;
    let mut response = see_other(&format!("/interaction/{}", id.value));
    if new_browser {
        cookies::set(response.headers_mut(), cookies::BROWSER, &browser, 24 * 3600, state.secure_cookies);
    }
    Ok(response)
}

/// What an interaction is for: an authorization request, which ends with a code sent to the
/// client's redirect URI, or a device authorization the user decides (RFC 8628 §3.3).
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Authorize(AuthorizationRequest),
    Device(DeviceRequest),
}

impl Pending {
    pub(crate) fn client_id(&self) -> &str {
        match self {
            Pending::Authorize(r) => &r.client_id,
            Pending::Device(d) => &d.client_id,
        }
    }

    /// Stored as the authorization request itself, or `{"device": …}`.
    fn to_json(&self) -> Result<serde_json::Value, Rejection> {
        let encoded = match self {
            Pending::Authorize(r) => serde_json::to_value(r),
            Pending::Device(d) => serde_json::to_value(d).map(|d| serde_json::json!({ "device": d })),
        };
        encoded.map_err(|e| Rejection::internal().with_internal("encode", e.to_string()))
    }

    fn from_json(v: &serde_json::Value) -> Result<Pending, Rejection> {
        let decoded = match v.get("device") {
            Some(d) => serde_json::from_value(d.clone()).map(Pending::Device),
            None => serde_json::from_value(v.clone()).map(Pending::Authorize),
        };
        decoded.map_err(|e| Rejection::internal().with_internal("decode", e.to_string()))
    }
}

/// A loaded interaction, checked against the browser and (for forms) the CSRF token.
pub(crate) struct Loaded {
    pub(crate) id: String,
    pub(crate) record: InteractionRecord,
    pub(crate) pending: Pending,
    pub(crate) csrf: String,
}

async fn load(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Loaded, Rejection> {
    let expired = || Rejection::new(Reason::InteractionExpired);
    let record = state.store.interaction(&hash_secret(id)).await.map_err(Rejection::store)?.ok_or_else(expired)?;
    if record.expires_at <= state.now() {
        return Err(expired().with("expired_at", candor_core::clock::rfc3339(record.expires_at)));
    }
    let browser = cookies::get(headers, cookies::BROWSER).unwrap_or_default();
    if !hashes_equal(&hash_secret(&browser), &record.browser_hash) {
        return Err(expired().with("problem", "this sign-in was started in another browser (or cookies are blocked)"));
    }
    let pending = Pending::from_json(&record.request)?;
    let csrf = csrf_token(&browser, id);
    Ok(Loaded { id: id.to_string(), record, pending, csrf })
}

fn check_csrf(loaded: &Loaded, form: &Params) -> Result<(), Rejection> {
    let sent = form.get("csrf")?.unwrap_or_default();
    if hashes_equal(&hash_secret(sent), &loaded.record.csrf_hash) {
        Ok(())
    } else {
        Err(Rejection::invalid("csrf", "the form's CSRF token is missing or wrong; reload the page"))
    }
}

pub async fn show(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let loaded = match load(&state, &headers, &id).await {
        Ok(l) => l,
        Err(r) => return error_page(&state, &r, &trace),
    };
    match (&loaded.record.login_user_id, &loaded.pending) {
        (None, _) => login_page(&state, &loaded, None, "", StatusCode::OK).await,
        (Some(user_id), Pending::Authorize(req)) => consent_page(&state, &loaded, req, user_id).await,
        (Some(user_id), Pending::Device(req)) => crate::device::confirm_page(&state, &loaded, req, user_id).await,
    }
}

/// The client as the pages name it, in HTML: its name in bold, and, for a client that
/// registered itself (RFC 7591), a warning that nobody checked that name.
pub(crate) async fn client_label(state: &AppState, client_id: &str) -> String {
    let (name, registered_itself) = match state.store.client(client_id).await {
        Ok(Some(c)) => (c.name, c.registration_token_hash.is_some()),
        _ => (client_id.to_string(), false),
    };
    let warning = if registered_itself {
        r#" <span class="muted">(an application that registered itself: this name is not verified)</span>"#
    } else {
        ""
    };
    format!("<strong>{}</strong>{warning}", esc(&name))
}

async fn login_page(state: &AppState, l: &Loaded, error: Option<&str>, username: &str, status: StatusCode) -> Response {
    let name = client_label(state, l.pending.client_id()).await;
    let error = error.map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e))).unwrap_or_default();
    let purpose = match &l.pending {
        Pending::Authorize(_) => "to continue to",
        Pending::Device(_) => "to connect a device to",
    };
    let body = format!(
        r#"<h1>Sign in</h1>
<p class="muted">{purpose} {name}</p>
{error}
<form method="post" action="/interaction/{id}/login">
<input type="hidden" name="csrf" value="{csrf}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{username}" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions"><button type="submit">Sign in</button></div>
</form>"#,
        id = esc(&l.id),
        csrf = esc(&l.csrf),
        username = esc(username),
    );
    html(status, page("Sign in", &body))
}

fn describe_scope(s: &str) -> &str {
    match s {
        scope::OPENID => "Confirm your identity",
        scope::PROFILE => "See your name and username",
        scope::EMAIL => "See your email address",
        scope::OFFLINE_ACCESS => "Keep access while you are away (refresh tokens)",
        other => other,
    }
}

/// What a grant will allow, as list items: the scopes ("Confirm your identity" first), and the
/// APIs (RFC 8707 resources) by their registered names, if any.
pub(crate) async fn grant_items(state: &AppState, scope: &str, resources: &[String]) -> (String, String) {
    let requested = candor_core::scope::Scope::from_stored(scope);
    let items: String = requested
        .iter()
        .filter(|s| *s == scope::OPENID)
        .chain(requested.iter().filter(|s| *s != scope::OPENID))
        .map(|s| format!("<li>{}</li>", esc(describe_scope(s))))
        .collect();
    let mut apis = Vec::new();
    for id in resources {
        let label = match state.store.resource(id).await {
            Ok(Some(r)) if r.name != r.id => format!("{} ({})", esc(&r.name), esc(&r.id)),
            _ => esc(id),
        };
        apis.push(format!("<li><code>{label}</code></li>"));
    }
    let apis = if apis.is_empty() {
        String::new()
    } else {
        format!(r#"<p>with access to:</p><ul class="scopes">{}</ul>"#, apis.concat())
    };
    (items, apis)
}

/// The Allow / Deny form of a consent or device confirmation page.
pub(crate) fn decision_form(l: &Loaded) -> String {
    format!(
        r#"<form method="post" action="/interaction/{id}/consent">
<input type="hidden" name="csrf" value="{csrf}">
<div class="actions">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>"#,
        id = esc(&l.id),
        csrf = esc(&l.csrf),
    )
}

pub(crate) async fn username(state: &AppState, user_id: &str) -> String {
    match state.store.user(user_id).await {
        Ok(Some(u)) => u.username,
        _ => String::new(),
    }
}

async fn consent_page(state: &AppState, l: &Loaded, req: &AuthorizationRequest, user_id: &str) -> Response {
    let name = client_label(state, &req.client_id).await;
    let username = username(state, user_id).await;
    let (items, apis) = grant_items(state, &req.scope, &req.resources).await;
    let body = format!(
        r#"<h1>Allow access?</h1>
<p>{name} asks to:</p>
<ul class="scopes">{items}</ul>
{apis}
<p class="muted">Signed in as <strong>{username}</strong>. You will return to <code>{redirect}</code>.</p>
{form}"#,
        items = items,
        apis = apis,
        username = esc(&username),
        redirect = esc(&req.redirect_uri),
        form = decision_form(l),
    );
    html(StatusCode::OK, page("Allow access", &body))
}

/// The interaction a form was posted to, and the form, once the browser binding and the CSRF
/// token have been checked.
pub(crate) async fn load_form(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &Bytes,
) -> Result<(Loaded, Params), Rejection> {
    let loaded = load(state, headers, id).await?;
    let form = parse_form(headers, body)?;
    check_csrf(&loaded, &form)?;
    Ok((loaded, form))
}

/// The address of the person's browser: the connection's peer, or what a trusted proxy says.
pub(crate) fn client_address(
    state: &AppState,
    peer: Option<Extension<ConnectInfo>>,
    headers: &HeaderMap,
) -> std::net::IpAddr {
    let peer = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |Extension(c)| c.0.ip());
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    state.proxies.client(peer, &forwarded)
}

pub(crate) type ConnectInfo = axum::extract::ConnectInfo<std::net::SocketAddr>;

pub async fn login(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    peer: Option<Extension<ConnectInfo>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: crate::respond::Body,
) -> Response {
    let form = async { load_form(&state, &headers, &id, &crate::respond::read_body(body)?).await };
    let (loaded, form) = match form.await {
        Ok(v) => v,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let username = form.get("username").ok().flatten().unwrap_or_default().to_string();
    let password = form.get_text("password").ok().flatten().unwrap_or_default().to_string();
    let s = &state.settings;
    let address = client_address(&state, peer, &headers);
    let keys = [
        crate::throttle::Key::username(&username, s.login_free_failures),
        crate::throttle::Key::address(address, s.login_address_free_failures),
    ];
    let now = state.now();
    // An admitted attempt counts as a failure until it succeeds (throttle.rs).
    let attempt = match state.throttle.begin(&keys, s.login_max_delay, now).await {
        Ok(attempt) => attempt,
        Err(wait) => {
            tracing::info!(trace = %trace.0, %address, wait, "login throttled");
            let message = format!(
                "Too many failed sign-ins for this account or from this network. Try again in {}.",
                if wait == 1 { "1 second".to_string() } else { format!("{wait} seconds") }
            );
            let mut page = login_page(&state, &loaded, Some(&message), &username, StatusCode::TOO_MANY_REQUESTS).await;
            if let Ok(v) = axum::http::HeaderValue::from_str(&wait.to_string()) {
                page.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            return page;
        }
    };
    let user = match state.store.user_by_username(&username).await {
        Ok(u) => u,
        Err(e) => return error_page(&state, &Rejection::store(e), &trace),
    };
    // Verify against a real hash even for unknown users, so timing does not reveal usernames.
    let stored = user.as_ref().map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let password_ok = state.verify_password(password, stored).await;
    let user = match user {
        Some(u) if password_ok && !u.disabled => u,
        Some(u) if password_ok && u.disabled => {
            attempt.succeeded();
            tracing::info!(trace = %trace.0, "login refused: user disabled");
            return login_page(&state, &loaded, Some("This account is disabled."), &username, StatusCode::FORBIDDEN)
                .await;
        }
        _ => {
            // `attempt` is dropped unsucceeded: a failure.
            tracing::info!(trace = %trace.0, %address, "login refused: wrong username or password");
            return login_page(
                &state,
                &loaded,
                Some("The username or password is wrong."),
                &username,
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
    };
    attempt.succeeded();
    // A new session id at every login: a session id planted before login is worthless after it.
    if let Some(old) = cookies::get(&headers, cookies::SESSION) {
        let _ = state.store.delete_session(&hash_secret(&old)).await;
    }
    let (Ok(cookie), Ok(sid)) = (Secret::generate(SecretKind::Session), candor_core::tokens::random_id()) else {
        return error_page(&state, &Rejection::internal(), &trace);
    };
    let session = SessionRecord {
        hash: cookie.hash.clone(),
        sid: Some(sid.clone()),
        user_id: user.id.clone(),
        auth_time: now,
        created_at: now,
        expires_at: now + state.settings.session_lifetime,
    };
    if let Err(e) = state.store.insert_session(&session).await {
        return error_page(&state, &Rejection::store(e), &trace);
    }
    if let Err(e) = state.store.record_login(&loaded.record.hash, &user.id, now, Some(&sid)).await {
        return error_page(&state, &Rejection::store(e), &trace);
    }
    tracing::info!(trace = %trace.0, user = %user.id, "user logged in");
    let login = Login { user_id: user.id.clone(), auth_time: now, sid: Some(sid) };
    let mut response = continue_after_login(&state, &trace, &loaded, &login).await;
    cookies::set(
        response.headers_mut(),
        cookies::SESSION,
        &cookie.value,
        state.settings.session_lifetime,
        state.secure_cookies,
    );
    response
}

async fn continue_after_login(state: &AppState, trace: &Trace, l: &Loaded, login: &Login) -> Response {
    // A device authorization is always confirmed on its own page (RFC 8628 §5.4).
    let Pending::Authorize(req) = &l.pending else { return see_other(&format!("/interaction/{}", l.id)) };
    let consented = match state.store.consent(&login.user_id, &req.client_id).await {
        Ok(c) => c,
        Err(e) => return error_page(state, &Rejection::store(e), trace),
    };
    let logged_in = LoggedIn { user_id: &login.user_id, auth_time: login.auth_time, during_this_request: true };
    match authorize::decide(req, Some(logged_in), &consented, false, state.now()) {
        Next::Consent { .. } => see_other(&format!("/interaction/{}", l.id)),
        Next::Issue { user_id, auth_time } => {
            finish(state, trace, l, req, &Login { user_id, auth_time, sid: login.sid.clone() }).await
        }
        Next::Fail(r) => redirect_error(state, &r, trace, &req.redirect_uri, req.state.as_deref()),
        Next::Login => see_other(&format!("/interaction/{}", l.id)),
    }
}

/// Completes the interaction exactly once, then issues the code.
async fn finish(state: &AppState, trace: &Trace, l: &Loaded, req: &AuthorizationRequest, login: &Login) -> Response {
    match state.store.take_interaction(&l.record.hash).await {
        Ok(true) => issue(state, trace, req, login, true).await,
        Ok(false) => {
            error_page(state, &Rejection::new(Reason::InteractionExpired).with("problem", "already completed"), trace)
        }
        Err(e) => error_page(state, &Rejection::store(e), trace),
    }
}

pub async fn consent(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: crate::respond::Body,
) -> Response {
    let form = async { load_form(&state, &headers, &id, &crate::respond::read_body(body)?).await };
    let (loaded, form) = match form.await {
        Ok(v) => v,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let (Some(user_id), Some(auth_time)) = (loaded.record.login_user_id.clone(), loaded.record.login_time) else {
        return see_other(&format!("/interaction/{}", loaded.id));
    };
    let decision = form.get("decision").ok().flatten();
    let req = match &loaded.pending {
        Pending::Authorize(req) => req,
        Pending::Device(device) => {
            return crate::device::decide(&state, &trace, &loaded, device, &user_id, auth_time, decision).await;
        }
    };
    match decision {
        Some("allow") => {
            if let Err(r) = grant_consent(&state, &user_id, &req.client_id, &req.scope).await {
                return error_page(&state, &r, &trace);
            }
            let login = Login { user_id, auth_time, sid: loaded.record.login_sid.clone() };
            finish(&state, &trace, &loaded, req, &login).await
        }
        Some("deny") => {
            let _ = state.store.take_interaction(&loaded.record.hash).await;
            let denied = Rejection::new(Reason::ConsentDenied);
            let mut r = redirect_error(&state, &denied, &trace, &req.redirect_uri, req.state.as_deref());
            // After a form POST, 303 (RFC 9700 §4.11), as when a code is issued.
            *r.status_mut() = StatusCode::SEE_OTHER;
            r
        }
        _ => error_page(&state, &Rejection::invalid("decision", "must be allow or deny"), &trace),
    }
}

/// Adds the scopes of a grant to the user's consent for the client.
pub(crate) async fn grant_consent(
    state: &AppState,
    user_id: &str,
    client_id: &str,
    scope: &str,
) -> Result<(), Rejection> {
    let scopes: Vec<String> = candor_core::scope::Scope::from_stored(scope).iter().map(str::to_string).collect();
    state.store.grant_consent(user_id, client_id, &scopes, state.now()).await.map_err(Rejection::store)
}

pub async fn stylesheet() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("public, max-age=3600"));
    (headers, crate::html::STYLESHEET).into_response()
}

//! GET|POST /logout, the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), its
//! confirmation page, and the back-channel logout (Back-Channel Logout 1.0) a logout triggers:
//! a logout token posted to every client the session signed in to that registered a
//! `backchannel_logout_uri`, each delivery's outcome recorded under the logout's trace id.

use crate::authorize::{browser_cookie, csrf_token, current_session, read_form, username};
use crate::cookies;
use crate::html::{esc, page};
use crate::respond::{Trace, html, redirect, see_other, titled_error_page};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use candor_core::audit::AuditRecord;
use candor_core::logout::{self, Confirm, LogoutRequest};
use candor_core::model::{Client, SessionRecord};
use candor_core::params::{Encoding, Params};
use candor_core::rejection::{Disclosure, Fact, Facts, Reason, Rejection};
use candor_core::store::EndedSession;
use candor_core::tokens::{hash_secret, hashes_equal};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a client's back-channel logout URI has to answer. Deliveries run side by side, so
/// a logout waits at most about this long, however many clients it tells.
pub const BACKCHANNEL_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a refusing client's answer is recorded.
const ANSWER_EXCERPT: usize = 200;
/// The parameters of a logout request the confirmation form carries to its POST.
const CARRIED: [&str; 4] = ["id_token_hint", "client_id", "post_logout_redirect_uri", "state"];

/// The HTTP client of back-channel deliveries: it never follows a redirect (Back-Channel Logout
/// 1.0 §2.8: the RP answers the POST itself) and gives up after `BACKCHANNEL_TIMEOUT`.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(BACKCHANNEL_TIMEOUT)
        .user_agent(concat!("Candor/", env!("CARGO_PKG_VERSION"), " (back-channel logout)"))
        .build()
}

type AppStateRef = State<Arc<AppState>>;

fn error_page(state: &AppState, r: &Rejection, trace: &Trace) -> Response {
    titled_error_page(
        state,
        r,
        trace,
        "logout",
        "This sign-out request cannot continue",
        "The application that sent you here made a logout request this provider refuses. You are still signed in here.",
    )
}

pub async fn get(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match Params::from_urlencoded(q.unwrap_or_default().as_bytes(), Encoding::Query) {
        Ok(p) => start(&state, &trace, &headers, &p).await,
        Err(r) => error_page(&state, &r, &trace),
    }
}

/// RP-Initiated Logout 1.0 §2: the OP supports GET and POST (a form) at its logout endpoint.
pub async fn post(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    match read_form(&headers, body) {
        Ok(p) => start(&state, &trace, &headers, &p).await,
        Err(r) => error_page(&state, &r, &trace),
    }
}

/// A checked logout request: what it asks, the client that asks, and where the browser goes after.
struct Checked {
    request: LogoutRequest,
    client: Option<Client>,
    redirect: Option<String>,
}

async fn check(state: &AppState, params: &Params) -> Result<Checked, Rejection> {
    let request = logout::read(params, &state.keys(), &state.settings.issuer)?;
    let client = match &request.client_id {
        Some(id) => Some(state.store.client(id).await.map_err(Rejection::store)?.ok_or_else(|| {
            let from = if request.hint.is_some() { "the id_token_hint's client" } else { "client_id" };
            Rejection::new(Reason::ClientUnknown).with_detail("client_id", id.clone()).with("named_by", from)
        })?),
        None => None,
    };
    let redirect = match &client {
        Some(c) => logout::check_redirect(&request, c)?,
        None => None,
    };
    Ok(Checked { request, client, redirect })
}

async fn start(state: &AppState, trace: &Trace, headers: &HeaderMap, params: &Params) -> Response {
    let checked = match check(state, params).await {
        Ok(c) => c,
        Err(r) => return error_page(state, &r, trace),
    };
    let session = match current_session(state, headers).await {
        Ok(s) => s,
        Err(r) => return error_page(state, &r, trace),
    };
    let Some(session) = session else {
        // Nothing to end here (ended before, elsewhere, or never signed in): the request is done.
        return finish(state, trace, &checked, None, false).await;
    };
    match logout::confirmation(checked.request.hint.as_ref(), &session) {
        None => finish(state, trace, &checked, Some(&session), false).await,
        Some(why) => confirm_page(state, trace, headers, params, &checked, &session, why).await,
    }
}

/// RP-Initiated Logout 1.0 §2: the user is asked unless the request carries an ID token of this
/// very session. The form carries the request's parameters, which are checked again on its POST.
async fn confirm_page(
    state: &AppState,
    trace: &Trace,
    headers: &HeaderMap,
    params: &Params,
    checked: &Checked,
    session: &SessionRecord,
    why: Confirm,
) -> Response {
    let (browser, new_browser) = match browser_cookie(headers) {
        Ok(b) => b,
        Err(r) => return error_page(state, &r, trace),
    };
    let mut carried = String::new();
    for name in CARRIED {
        if let Ok(Some(value)) = params.get(name) {
            carried.push_str(&format!(r#"<input type="hidden" name="{name}" value="{}">"#, esc(value)));
        }
    }
    let asker = match &checked.client {
        Some(c) => format!("<p><strong>{}</strong> asks you to sign out.</p>", esc(&c.name)),
        None => String::new(),
    };
    let body = format!(
        r#"<h1>Sign out?</h1>
{asker}
<p class="muted">{why}</p>
<p>You are signed in as <strong>{username}</strong>. Signing out here signs you out of the applications you signed in to with it.</p>
<form method="post" action="/logout/confirm">
<input type="hidden" name="csrf" value="{csrf}">
{carried}
<div class="actions">
<button type="submit" name="decision" value="logout">Sign out</button>
<button type="submit" name="decision" value="stay" class="secondary">Stay signed in</button>
</div>
</form>"#,
        why = esc(why.explain()),
        username = esc(&username(state, &session.user_id).await),
        csrf = esc(&csrf_token(&browser, logout::END_SESSION_PATH)),
    );
    let mut response = html(StatusCode::OK, page("Sign out", &body));
    if new_browser {
        cookies::set(response.headers_mut(), cookies::BROWSER, &browser, 24 * 3600, state.secure_cookies);
    }
    response
}

/// POST /logout/confirm: the user's answer on the confirmation page.
pub async fn confirm(
    State(state): AppStateRef,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let form = match read_form(&headers, body) {
        Ok(f) => f,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let browser = cookies::get(&headers, cookies::BROWSER).unwrap_or_default();
    let sent = form.get("csrf").ok().flatten().unwrap_or_default();
    if browser.is_empty()
        || !hashes_equal(&hash_secret(sent), &hash_secret(&csrf_token(&browser, logout::END_SESSION_PATH)))
    {
        let r = Rejection::invalid(
            "csrf",
            "the form's CSRF token is missing or wrong; go back to the application and sign out again",
        );
        return error_page(&state, &r, &trace);
    }
    let checked = match check(&state, &form).await {
        Ok(c) => c,
        Err(r) => return error_page(&state, &r, &trace),
    };
    let session = match current_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return error_page(&state, &r, &trace),
    };
    match form.get("decision").ok().flatten() {
        Some("logout") => finish(&state, &trace, &checked, session.as_ref(), true).await,
        Some("stay") => match &checked.redirect {
            // The application has ended its own session already (that is why it sent the user
            // here): the user goes back to it, still signed in here.
            Some(uri) => see_other(&logout::redirect_after(uri, checked.request.state.as_deref())),
            None => message(
                StatusCode::OK,
                "Still signed in",
                "<h1>You are still signed in</h1><p>Nothing was changed.</p>",
            ),
        },
        _ => error_page(&state, &Rejection::invalid("decision", "must be logout or stay"), &trace),
    }
}

fn message(status: StatusCode, title: &str, body: &str) -> Response {
    html(status, page(title, body))
}

/// Ends the session (if any), tells the clients it signed in to, records it all under the
/// trace id, and sends the browser on.
async fn finish(
    state: &AppState,
    trace: &Trace,
    checked: &Checked,
    session: Option<&SessionRecord>,
    after_post: bool,
) -> Response {
    let now = state.now();
    let ended = match session {
        Some(s) => match state.store.end_session(&s.hash, now).await {
            Ok(ended) => ended,
            Err(e) => return error_page(state, &Rejection::store(e), trace),
        },
        None => None,
    };
    let deliveries = match &ended {
        Some(e) => backchannel(state, e).await,
        None => Vec::new(),
    };
    record(state, trace, checked, ended.as_ref(), &deliveries, now).await;
    let mut response = match &checked.redirect {
        Some(uri) => {
            let to = logout::redirect_after(uri, checked.request.state.as_deref());
            if after_post { see_other(&to) } else { redirect(&to) }
        }
        None => signed_out_page(ended.as_ref(), &deliveries),
    };
    cookies::clear(response.headers_mut(), cookies::SESSION, state.secure_cookies);
    response
}

/// What became of one client's logout token.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The client answered 2xx.
    Delivered { status: u16 },
    /// The client answered, but not with success (a redirect included: it is not followed).
    Refused { status: u16, answer: String },
    /// No answer: no connection, a timeout, a broken response.
    Failed { problem: String },
    /// Not sent.
    Skipped { why: &'static str },
}

impl Outcome {
    fn fact(&self) -> Value {
        match self {
            Outcome::Delivered { status } => json!({ "outcome": "delivered", "status": status }),
            Outcome::Refused { status, answer } => json!({ "outcome": "refused", "status": status, "answer": answer }),
            Outcome::Failed { problem } => json!({ "outcome": "failed", "problem": problem }),
            Outcome::Skipped { why } => json!({ "outcome": "skipped", "why": why }),
        }
    }

    fn for_people(&self) -> String {
        match self {
            Outcome::Delivered { .. } => "signed out".into(),
            Outcome::Refused { status, .. } => format!("was told, but answered HTTP {status}"),
            Outcome::Failed { .. } => "could not be told (it did not answer)".into(),
            Outcome::Skipped { .. } => "was not told".into(),
        }
    }
}

/// One client the session signed in to, and what became of its logout token.
struct Delivery {
    client_id: String,
    name: String,
    outcome: Outcome,
}

/// Posts a logout token to every client the session signed in to that registered a
/// back-channel logout URI, all at once; returns each outcome (clients without a URI are left
/// out: they did not ask to be told).
async fn backchannel(state: &AppState, ended: &EndedSession) -> Vec<Delivery> {
    let keys = state.keys();
    let now = state.now();
    let mut sends = tokio::task::JoinSet::new();
    let mut done = Vec::new();
    for client_id in &ended.clients {
        let client = match state.store.client(client_id).await {
            Ok(Some(c)) => c,
            // Removed since: nobody to tell.
            Ok(None) => continue,
            Err(e) => {
                let outcome = Outcome::Failed { problem: format!("the client could not be read: {e}") };
                done.push(Delivery { client_id: client_id.clone(), name: client_id.clone(), outcome });
                continue;
            }
        };
        let Some(uri) = client.logout.backchannel_uri.clone() else { continue };
        let session = &ended.session;
        if client.logout.backchannel_session_required && session.sid.is_none() {
            let why = "the client requires a sid and this session, older than Candor's sids, has none";
            done.push(Delivery { client_id: client.id, name: client.name, outcome: Outcome::Skipped { why } });
            continue;
        }
        let token = match logout::logout_token(
            &keys,
            &state.settings,
            &client,
            &session.user_id,
            session.sid.as_deref(),
            now,
        ) {
            Ok(t) => t,
            Err(_) => {
                let outcome = Outcome::Failed { problem: "the logout token could not be signed".into() };
                done.push(Delivery { client_id: client.id, name: client.name, outcome });
                continue;
            }
        };
        let http = state.outbound.clone();
        sends.spawn(async move {
            let outcome = deliver(&http, &uri, &token).await;
            Delivery { client_id: client.id, name: client.name, outcome }
        });
    }
    while let Some(joined) = sends.join_next().await {
        match joined {
            Ok(delivery) => done.push(delivery),
            Err(e) => tracing::error!(error = %e, "a back-channel logout delivery stopped"),
        }
    }
    done.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    done
}

/// Back-Channel Logout 1.0 §2.5: a form POST of `logout_token`; §2.8: 200 means done.
async fn deliver(http: &reqwest::Client, uri: &str, token: &str) -> Outcome {
    match http.post(uri).form(&[("logout_token", token)]).send().await {
        Ok(answer) if answer.status().is_success() => Outcome::Delivered { status: answer.status().as_u16() },
        Ok(mut answer) => {
            let status = answer.status().as_u16();
            let location = answer.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
            // Only the start of the answer is read: a client cannot make a logout hold its body.
            let mut head = Vec::new();
            while head.len() < ANSWER_EXCERPT * 4 {
                match answer.chunk().await {
                    Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&head);
            let mut answer: String = text.chars().filter(|c| !c.is_control()).take(ANSWER_EXCERPT).collect();
            if let Some(to) = location {
                answer = format!("a redirect to {to}, which is not followed: the URI must answer the POST itself");
            }
            Outcome::Refused { status, answer }
        }
        Err(e) if e.is_timeout() => {
            Outcome::Failed { problem: format!("no answer within {} s", BACKCHANNEL_TIMEOUT.as_secs()) }
        }
        Err(e) if e.is_connect() => Outcome::Failed { problem: format!("cannot connect to {uri}: {}", root_cause(&e)) },
        Err(e) => Outcome::Failed { problem: root_cause(&e) },
    }
}

/// The innermost cause of an HTTP client error (reqwest's own text is "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The logout's audit record: which client asked, whether a session ended, the tokens revoked
/// and what became of each logout token.
async fn record(
    state: &AppState,
    trace: &Trace,
    checked: &Checked,
    ended: Option<&EndedSession>,
    deliveries: &[Delivery],
    now: i64,
) {
    let mut audit = AuditRecord::success(&trace.0, now, "logout");
    audit.client_id = checked.request.client_id.clone();
    let fact = |name: &'static str, value: Value| Fact { name, value, disclosure: Disclosure::Public };
    let backchannel: serde_json::Map<String, Value> =
        deliveries.iter().map(|d| (d.client_id.clone(), d.outcome.fact())).collect();
    let mut facts = vec![
        fact("session_ended", json!(ended.is_some())),
        fact("id_token_hint", json!(checked.request.hint.is_some())),
    ];
    if let Some(e) = ended {
        facts.push(fact("signed_in_clients", json!(e.clients.len())));
        facts.push(fact("tokens_revoked", json!(e.tokens_revoked)));
        facts.push(fact("backchannel", Value::Object(backchannel)));
    }
    audit.facts = serde_json::to_value(Facts(facts)).unwrap_or_default();
    crate::token::record(state, &audit).await;
    tracing::info!(
        trace = %trace.0,
        client = checked.request.client_id.as_deref().unwrap_or("-"),
        ended = ended.is_some(),
        told = deliveries.iter().filter(|d| matches!(d.outcome, Outcome::Delivered { .. })).count(),
        not_told = deliveries.iter().filter(|d| !matches!(d.outcome, Outcome::Delivered { .. })).count(),
        "logout"
    );
}

fn signed_out_page(ended: Option<&EndedSession>, deliveries: &[Delivery]) -> Response {
    let mut apps = String::new();
    for d in deliveries {
        apps.push_str(&format!("<li><strong>{}</strong> {}</li>", esc(&d.name), esc(&d.outcome.for_people())));
    }
    let apps = if apps.is_empty() { String::new() } else { format!(r#"<ul class="scopes">{apps}</ul>"#) };
    let body = match ended {
        Some(_) => format!("<h1>You are signed out</h1>\n{apps}\n<p class=\"muted\">You can close this window.</p>"),
        None => "<h1>You are signed out</h1>\n<p class=\"muted\">This browser was not signed in.</p>".to_string(),
    };
    message(StatusCode::OK, "Signed out", &body)
}

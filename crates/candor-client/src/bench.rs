//! `candor bench`: a load driver for any OpenID provider reachable over plain HTTP (put it next
//! to the provider: it measures the provider, not a network).
//!
//! Every worker owns one keep-alive HTTP/1.1 connection per origin and runs its scenario in a
//! loop, as `wrk` does, so the driver itself stays light on the cores it shares with the provider.
//! Scenarios: `client-credentials`, `code` (the whole authorization-code round trip with a fresh
//! cookie jar per flow: authorize, whatever login and consent forms the provider shows, the
//! redirect captured without following it, the token exchange with the PKCE verifier),
//! `code-sso` (the same round trip by a signed-in user: one cookie jar per worker), `refresh`
//! (rotation chains), `userinfo`, `introspection`, and `startup` (process start to first answer).

use crate::request::{UrlParts, encode, random};
use bytes::Bytes;
use candor_core::pkce::s256;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    ClientCredentials,
    Code,
    /// The code round trip of a user who is already signed in: one cookie jar per worker, kept
    /// across its flows, so after its first flow the provider's session (and remembered consent)
    /// lets the authorization request through without a login (single sign-on).
    CodeSso,
    Refresh,
    Userinfo,
    Introspection,
    /// The device authorization grant (RFC 8628): the device's request, the user's part in the
    /// browser (the verification page, sign-in and confirmation, driven as forms), and the poll
    /// that collects the tokens.
    Device,
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Scenario> {
        Some(match s {
            "client-credentials" | "client_credentials" | "cc" => Scenario::ClientCredentials,
            "code" | "authorization-code" | "authorization_code" => Scenario::Code,
            "code-sso" | "sso" => Scenario::CodeSso,
            "refresh" | "refresh-token" | "refresh_token" => Scenario::Refresh,
            "userinfo" => Scenario::Userinfo,
            "introspection" | "introspect" => Scenario::Introspection,
            "device" | "device-code" | "device_code" => Scenario::Device,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::ClientCredentials => "client-credentials",
            Scenario::Code => "code",
            Scenario::CodeSso => "code-sso",
            Scenario::Refresh => "refresh",
            Scenario::Userinfo => "userinfo",
            Scenario::Introspection => "introspection",
            Scenario::Device => "device",
        }
    }

    /// What one measured operation is.
    fn operation(self) -> &'static str {
        match self {
            Scenario::ClientCredentials => "token request",
            Scenario::Code => "authorization-code round trip",
            Scenario::CodeSso => "signed-in authorization-code round trip",
            Scenario::Refresh => "refresh rotation",
            Scenario::Userinfo => "userinfo request",
            Scenario::Introspection => "introspection request",
            Scenario::Device => "device authorization round trip",
        }
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub issuer: String,
    pub scenario: Scenario,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub auth: ClientAuth,
    /// For client-credentials: the scope to ask for (none: the client's default).
    pub scope: Option<String>,
    /// For the flows: the scope of the authorization request.
    pub flow_scope: String,
    pub redirect_uri: String,
    /// Filled into a login form's username and password fields, if the provider shows one.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Extra authorization request parameters (`prompt=consent`, `resource=…`).
    pub extra_authorize: Vec<(String, String)>,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// The provider's process, to sample its resident memory during the measured phase.
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub provider: String,
    pub scenario: Scenario,
    pub operation: &'static str,
    pub concurrency: usize,
    pub duration_s: f64,
    /// Operations that completed correctly in the measured phase.
    pub ok: u64,
    pub errors: u64,
    /// Error kinds and how often each happened.
    pub error_kinds: BTreeMap<String, u64>,
    /// Correct operations per second.
    pub throughput: f64,
    /// HTTP requests per second (a code round trip is several).
    pub http_requests_per_s: f64,
    pub http_requests_per_op: f64,
    pub latency: Option<Latency>,
    /// Largest resident set seen while measuring, and the kernel's high-water mark after.
    pub rss_peak_mib: Option<f64>,
    pub rss_hwm_mib: Option<f64>,
}

impl Report {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} against {}: {} workers for {:.1} s\n  {} ok ({}), {} errors\n  throughput {:.0}/s ({:.0} HTTP requests/s, {:.1} per operation)\n",
            self.scenario.as_str(),
            self.provider,
            self.concurrency,
            self.duration_s,
            self.ok,
            self.operation,
            self.errors,
            self.throughput,
            self.http_requests_per_s,
            self.http_requests_per_op,
        );
        if let Some(l) = &self.latency {
            s.push_str(&format!(
                "  latency p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  mean {:.2} ms\n",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
            ));
        }
        if let (Some(peak), Some(hwm)) = (self.rss_peak_mib, self.rss_hwm_mib) {
            s.push_str(&format!(
                "  provider resident memory: peak {peak:.1} MiB while measured, high-water mark {hwm:.1} MiB\n"
            ));
        }
        for (kind, n) in &self.error_kinds {
            s.push_str(&format!("  error x{n}: {kind}\n"));
        }
        s
    }
}

/// Endpoints read from discovery.
#[derive(Debug, Clone)]
struct Endpoints {
    authorization: Option<String>,
    device_authorization: Option<String>,
    token: String,
    userinfo: Option<String>,
    introspection: Option<String>,
}

/// One plain-HTTP/1.1 keep-alive connection per origin, reopened after a failure.
struct Http {
    conns: BTreeMap<String, SendRequest<Full<Bytes>>>,
    requests: u64,
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `error` of an OAuth error body, or the status.
    fn describe(&self) -> String {
        match self.json().and_then(|v| v["error"].as_str().map(str::to_string)) {
            Some(e) => format!("HTTP {} {e}", self.status),
            None => format!("HTTP {}", self.status),
        }
    }
}

/// `(origin "host:port", path and query)` of an http:// URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!("{url}: the load driver speaks plain http:// only; run it next to the provider"));
    }
    let host = u.host_str().ok_or_else(|| format!("{url}: no host"))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    Ok((format!("{host}:{port}"), path))
}

impl Http {
    fn new() -> Http {
        Http { conns: BTreeMap::new(), requests: 0 }
    }

    async fn connect(origin: &str) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(origin).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    async fn send(
        &mut self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Answer, String> {
        let (origin, path) = split_url(url)?;
        let mut builder = http::Request::builder().method(method).uri(path).header("host", &origin);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let has_body = body.is_some();
        if has_body {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| e.to_string())?;
        let mut sender = match self.conns.remove(&origin) {
            Some(s) if !s.is_closed() => s,
            _ => Http::connect(&origin).await?,
        };
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        self.requests += 1;
        let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        self.conns.insert(origin, sender);
        Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body })
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The client's credentials on a token-endpoint request.
struct Credentials {
    basic: Option<String>,
    post: Vec<(String, String)>,
}

impl Credentials {
    fn new(o: &Options) -> Credentials {
        use base64::Engine;
        match (&o.client_secret, o.auth) {
            (Some(secret), ClientAuth::Basic) => Credentials {
                basic: Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        encode(&o.client_id),
                        encode(secret)
                    ))
                )),
                post: Vec::new(),
            },
            (Some(secret), ClientAuth::Post) => Credentials {
                basic: None,
                post: vec![("client_id".into(), o.client_id.clone()), ("client_secret".into(), secret.clone())],
            },
            (None, _) => Credentials { basic: None, post: vec![("client_id".into(), o.client_id.clone())] },
        }
    }

    async fn post(&self, http: &mut Http, url: &str, pairs: &[(&str, &str)]) -> Result<Answer, String> {
        let mut all: Vec<(&str, &str)> = pairs.to_vec();
        all.extend(self.post.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let headers: Vec<(&str, &str)> = match &self.basic {
            Some(b) => vec![("authorization", b.as_str()), ("accept", "application/json")],
            None => vec![("accept", "application/json")],
        };
        http.send(http::Method::POST, url, &headers, Some(form(&all))).await
    }
}

/// A cookie jar (one browser): every cookie the provider set is sent back to it.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, a: &Answer) {
        for v in a.headers.get_all("set-cookie") {
            let Ok(text) = v.to_str() else { continue };
            let Some((name, rest)) = text.split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or("").to_string();
            let expired = text.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            self.0.retain(|(n, _)| n != name);
            if !expired {
                self.0.push((name.trim().to_string(), value));
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }
}

/// `base` + a relative reference, as a browser would resolve it.
fn resolve(base: &str, reference: &str) -> Result<String, String> {
    url::Url::parse(base).and_then(|b| b.join(reference)).map(|u| u.to_string()).map_err(|e| e.to_string())
}

/// The HTML form a browser user would submit on a login or consent page.
#[derive(Debug, PartialEq)]
struct HtmlForm {
    action: Option<String>,
    method: String,
    fields: Vec<(String, String)>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let offset = tag.len() - rest.len() + 1;
        let value = tag[offset..].trim_start();
        let v = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value.split(|c: char| c.is_ascii_whitespace() || c == '>').next().unwrap_or(""),
        };
        return Some(unescape(v));
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Picks the form to submit (the one with a password field, else the first) and fills it: the
/// password field, a username field, hidden fields as they are, and the approving submit button.
fn fill_form(page: &str, username: Option<&str>, password: Option<&str>) -> Option<HtmlForm> {
    let lower = page.to_ascii_lowercase();
    let mut forms: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<form") {
        let start = from + i;
        let end = lower[start..].find("</form").map_or(lower.len(), |e| start + e);
        forms.push((start, end));
        from = end;
    }
    let (start, end) = forms
        .iter()
        .copied()
        .find(|(s, e)| lower[*s..*e].contains("type=\"password\"") || lower[*s..*e].contains("type=password"))
        .or_else(|| forms.first().copied())?;
    let html = &page[start..end];
    let open_end = html.find('>')?;
    let open = &html[..open_end];
    let mut f = HtmlForm {
        action: attr(open, "action"),
        method: attr(open, "method").unwrap_or_else(|| "get".into()).to_ascii_lowercase(),
        fields: Vec::new(),
    };
    let mut buttons: Vec<(String, String)> = Vec::new();
    let lower_html = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower_html[at..].find('<') {
        let s = at + i;
        let e = lower_html[s..].find('>').map_or(html.len(), |e| s + e);
        let tag = &html[s..e];
        at = e;
        let ltag = tag.to_ascii_lowercase();
        let is_input = ltag.starts_with("<input");
        let is_button = ltag.starts_with("<button");
        if !is_input && !is_button {
            continue;
        }
        let Some(name) = attr(tag, "name") else { continue };
        let kind = attr(tag, "type").unwrap_or_else(|| if is_button { "submit".into() } else { "text".into() });
        let value = attr(tag, "value").unwrap_or_default();
        match kind.to_ascii_lowercase().as_str() {
            "submit" => buttons.push((name, value)),
            "password" => f.fields.push((name, password.unwrap_or_default().to_string())),
            "hidden" => f.fields.push((name, value)),
            "checkbox" | "radio" => {
                if ltag.contains(" checked") {
                    f.fields.push((name, if value.is_empty() { "on".into() } else { value }));
                }
            }
            _ => {
                let n = name.to_ascii_lowercase();
                let user_field = ["user", "login", "email", "name"].iter().any(|k| n.contains(k));
                // A field that already has a value (a prefilled user code) keeps it.
                match username {
                    Some(u) if user_field && value.is_empty() => f.fields.push((name, u.to_string())),
                    _ => f.fields.push((name, value)),
                }
            }
        }
    }
    let approve = ["allow", "approve", "accept", "yes", "continue", "consent", "authorize", "sign"];
    if let Some(b) = buttons
        .iter()
        .find(|(n, v)| approve.iter().any(|a| v.to_ascii_lowercase().contains(a) || n.to_ascii_lowercase().contains(a)))
        .or_else(|| buttons.first())
    {
        f.fields.push(b.clone());
    }
    Some(f)
}

/// The tokens one flow produced.
struct Tokens {
    access: String,
    refresh: Option<String>,
}

/// One authorization-code round trip with a fresh cookie jar.
async fn code_flow(http: &mut Http, o: &Options, ep: &Endpoints, creds: &Credentials) -> Result<Tokens, String> {
    code_flow_in(http, o, ep, creds, &mut Jar::default()).await
}

/// One authorization-code round trip that sends the cookies of `jar` and keeps the ones set.
async fn code_flow_in(
    http: &mut Http,
    o: &Options,
    ep: &Endpoints,
    creds: &Credentials,
    jar: &mut Jar,
) -> Result<Tokens, String> {
    let authorize = ep.authorization.as_deref().ok_or("the provider advertises no authorization_endpoint")?;
    let verifier = random(64)?;
    let state = random(22)?;
    let nonce = random(22)?;
    let mut url = format!(
        "{authorize}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={}&code_challenge_method=S256",
        if authorize.contains('?') { "&" } else { "?" },
        encode(&o.client_id),
        encode(&o.redirect_uri),
        encode(&o.flow_scope),
        s256(&verifier),
    );
    for (k, v) in &o.extra_authorize {
        url.push_str(&format!("&{}={}", encode(k), encode(v)));
    }
    let callback = match drive(http, o, jar, url, Some(&o.redirect_uri), "authorize").await? {
        Driven::Redirected(to) => to,
        Driven::Finished => return Err("authorize: a page with no form, before the redirect URI".into()),
    };
    let cb = UrlParts::parse(&callback)?;
    if let Some(e) = cb.get("error") {
        return Err(format!("callback: error={e}"));
    }
    if cb.get("state") != Some(state.as_str()) {
        return Err("callback: state does not match".into());
    }
    let code = cb.get("code").ok_or("callback: no code")?.to_string();
    let a = creds
        .post(
            http,
            &ep.token,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &o.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await?;
    tokens_from(&a, "code exchange")
}

/// Where driving a browser through the provider's pages ended.
enum Driven {
    /// A redirect to the URL that was waited for.
    Redirected(String),
    /// A page with no form, after at least one form was submitted (the user's part is done).
    Finished,
}

/// Drives a browser from `url` through the provider's pages: follows redirects, fills and
/// submits each page's form (sign-in, consent, a device code), sending and keeping the cookies
/// of `jar`, until a redirect to `stop` or, without `stop`, a page with no form.
async fn drive(
    http: &mut Http,
    o: &Options,
    jar: &mut Jar,
    mut url: String,
    stop: Option<&str>,
    what: &str,
) -> Result<Driven, String> {
    let mut method = http::Method::GET;
    let mut body: Option<String> = None;
    let mut submitted = false;
    for _ in 0..12 {
        let cookie = jar.header();
        let mut headers = vec![("accept", "text/html")];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        let a = http.send(method.clone(), &url, &headers, body.take()).await?;
        jar.take(&a);
        if (300..400).contains(&a.status) {
            let location = a.header("location").ok_or_else(|| format!("{what}: HTTP {} without Location", a.status))?;
            let next = resolve(&url, location)?;
            if stop.is_some_and(|s| next.starts_with(s)) {
                return Ok(Driven::Redirected(next));
            }
            url = next;
            method = http::Method::GET;
            continue;
        }
        if a.status != 200 {
            return Err(format!("{what}: {} on {}", a.describe(), url.split('?').next().unwrap_or("")));
        }
        let page = String::from_utf8_lossy(&a.body);
        let Some(f) = fill_form(&page, o.username.as_deref(), o.password.as_deref()) else {
            if submitted && stop.is_none() {
                return Ok(Driven::Finished);
            }
            return Err(format!("{what}: HTTP 200 with no form to submit"));
        };
        submitted = true;
        let target = resolve(&url, f.action.as_deref().unwrap_or(""))?;
        let pairs: Vec<(&str, &str)> = f.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if f.method == "post" {
            method = http::Method::POST;
            body = Some(form(&pairs));
            url = target;
        } else {
            method = http::Method::GET;
            url = format!("{}?{}", target.split('?').next().unwrap_or(&target), form(&pairs));
        }
    }
    Err(format!("{what}: more than 12 steps without reaching the end"))
}

/// One device authorization (RFC 8628): the device's request, the user's part through the
/// verification URI with the code filled in, then one poll, which the approval lets through.
async fn device_flow(http: &mut Http, o: &Options, ep: &Endpoints, creds: &Credentials) -> Result<Tokens, String> {
    let endpoint =
        ep.device_authorization.as_deref().ok_or("the provider advertises no device_authorization_endpoint")?;
    let a = creds.post(http, endpoint, &[("scope", &o.flow_scope)]).await?;
    if a.status != 200 {
        return Err(format!("device authorization: {}", a.describe()));
    }
    let v = a.json().ok_or("device authorization: HTTP 200 but not JSON")?;
    let device_code = v["device_code"].as_str().ok_or("device authorization: no device_code")?.to_string();
    let complete = v["verification_uri_complete"]
        .as_str()
        .ok_or("device authorization: no verification_uri_complete to open with the code filled in")?
        .to_string();
    drive(http, o, &mut Jar::default(), complete, None, "verification").await?;
    let grant = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code.as_str())];
    let a = creds.post(http, &ep.token, &grant).await?;
    tokens_from(&a, "device poll")
}

fn tokens_from(a: &Answer, what: &str) -> Result<Tokens, String> {
    if a.status != 200 {
        return Err(format!("{what}: {}", a.describe()));
    }
    let v = a.json().ok_or_else(|| format!("{what}: HTTP 200 but not JSON"))?;
    let access = v["access_token"].as_str().ok_or_else(|| format!("{what}: no access_token"))?.to_string();
    Ok(Tokens { access, refresh: v["refresh_token"].as_str().map(str::to_string) })
}

/// What a worker keeps between operations (a refresh chain's current token, a bearer token,
/// the cookies of a signed-in browser).
#[derive(Default)]
struct Carry {
    tokens: Option<Tokens>,
    jar: Jar,
}

async fn operation(
    http: &mut Http,
    o: &Options,
    ep: &Endpoints,
    creds: &Credentials,
    carry: &mut Carry,
) -> Result<(), String> {
    match o.scenario {
        Scenario::ClientCredentials => {
            let mut pairs = vec![("grant_type", "client_credentials")];
            if let Some(s) = &o.scope {
                pairs.push(("scope", s));
            }
            let a = creds.post(http, &ep.token, &pairs).await?;
            tokens_from(&a, "token").map(|_| ())
        }
        Scenario::Code => code_flow(http, o, ep, creds).await.map(|_| ()),
        Scenario::Device => device_flow(http, o, ep, creds).await.map(|_| ()),
        Scenario::CodeSso => {
            let result = code_flow_in(http, o, ep, creds, &mut carry.jar).await.map(|_| ());
            if result.is_err() {
                // Start the next flow signed out, as a new browser.
                carry.jar = Jar::default();
            }
            result
        }
        Scenario::Refresh => {
            let current = match carry.tokens.as_ref().and_then(|t| t.refresh.clone()) {
                Some(r) => r,
                None => {
                    let t = code_flow(http, o, ep, creds).await.map_err(|e| format!("setup: {e}"))?;
                    let r = t
                        .refresh
                        .clone()
                        .ok_or("setup: the code exchange returned no refresh_token (scope offline_access?)")?;
                    carry.tokens = Some(t);
                    r
                }
            };
            let a =
                creds.post(http, &ep.token, &[("grant_type", "refresh_token"), ("refresh_token", &current)]).await?;
            match tokens_from(&a, "refresh") {
                Ok(mut t) => {
                    // A provider that does not rotate returns no new refresh token: keep using the old one.
                    t.refresh = t.refresh.or(Some(current));
                    carry.tokens = Some(t);
                    Ok(())
                }
                Err(e) => {
                    carry.tokens = None;
                    Err(e)
                }
            }
        }
        Scenario::Userinfo | Scenario::Introspection => {
            let access = match carry.tokens.as_ref() {
                Some(t) => t.access.clone(),
                None => {
                    let t = code_flow(http, o, ep, creds).await.map_err(|e| format!("setup: {e}"))?;
                    let a = t.access.clone();
                    carry.tokens = Some(t);
                    a
                }
            };
            let a = if o.scenario == Scenario::Userinfo {
                let url = ep.userinfo.as_deref().ok_or("the provider advertises no userinfo_endpoint")?;
                let bearer = format!("Bearer {access}");
                http.send(http::Method::GET, url, &[("authorization", &bearer), ("accept", "application/json")], None)
                    .await?
            } else {
                let url = ep.introspection.as_deref().ok_or("the provider advertises no introspection_endpoint")?;
                creds.post(http, url, &[("token", &access), ("token_type_hint", "access_token")]).await?
            };
            if a.status != 200 {
                carry.tokens = None;
                return Err(format!("{}: {}", o.scenario.as_str(), a.describe()));
            }
            if o.scenario == Scenario::Introspection && a.json().map(|v| v["active"] == Value::Bool(true)) != Some(true)
            {
                carry.tokens = None;
                return Err("introspection: the token is not active".into());
            }
            Ok(())
        }
    }
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    requests: u64,
}

async fn worker(o: Arc<Options>, ep: Arc<Endpoints>, measure_from: Instant, until: Instant) -> Tally {
    let creds = Credentials::new(&o);
    let mut http = Http::new();
    let mut carry = Carry::default();
    let mut tally = Tally::default();
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let before = http.requests;
        let result = operation(&mut http, &o, &ep, &creds, &mut carry).await;
        let done = Instant::now();
        if started < measure_from || done > until {
            continue;
        }
        tally.requests += http.requests - before;
        match result {
            Ok(()) => {
                tally.latencies_us.push(u32::try_from(done.duration_since(started).as_micros()).unwrap_or(u32::MAX))
            }
            Err(e) => {
                *tally.errors.entry(e).or_default() += 1;
                // Do not spin on a provider that refuses connections.
                if http.conns.is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    tally
}

async fn discover(issuer: &str) -> Result<Endpoints, String> {
    let mut http = Http::new();
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let a = http.send(http::Method::GET, &url, &[("accept", "application/json")], None).await?;
    if a.status != 200 {
        return Err(format!("discovery: {url} answered HTTP {}", a.status));
    }
    let doc = a.json().ok_or_else(|| format!("discovery: {url} is not JSON"))?;
    let get = |k: &str| doc[k].as_str().map(str::to_string);
    Ok(Endpoints {
        authorization: get("authorization_endpoint"),
        device_authorization: get("device_authorization_endpoint"),
        token: get("token_endpoint").ok_or("discovery: no token_endpoint")?,
        userinfo: get("userinfo_endpoint"),
        introspection: get("introspection_endpoint"),
    })
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Nearest-rank percentile, `permille` thousandths (990 = p99), in milliseconds.
fn percentile(sorted: &[u32], permille: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (permille * sorted.len()).div_ceil(1000);
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Runs the scenario at `concurrency` for `warmup` + `duration`; only the measured phase counts.
pub async fn run(o: Options) -> Result<Report, String> {
    if o.concurrency == 0 {
        return Err("concurrency must be at least 1".into());
    }
    let ep = Arc::new(discover(&o.issuer).await?);
    // One operation first, so a misconfiguration is one clear error and not thousands.
    {
        let mut http = Http::new();
        let mut carry = Carry::default();
        operation(&mut http, &o, &ep, &Credentials::new(&o), &mut carry)
            .await
            .map_err(|e| format!("the first {} failed: {e}", o.scenario.operation()))?;
    }
    let o = Arc::new(o);
    let measure_from = Instant::now() + o.warmup;
    let until = measure_from + o.duration;
    let sampler = o.pid.map(|pid| {
        tokio::spawn(async move {
            let mut peak = 0u64;
            tokio::time::sleep_until(measure_from.into()).await;
            while Instant::now() < until {
                peak = peak.max(rss_kib(pid, "VmRSS:").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    });
    let workers: Vec<_> =
        (0..o.concurrency).map(|_| tokio::spawn(worker(o.clone(), ep.clone(), measure_from, until))).collect();
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut requests = 0;
    for w in workers {
        let t = w.await.map_err(|e| format!("worker: {e}"))?;
        latencies.extend(t.latencies_us);
        requests += t.requests;
        for (k, n) in t.errors {
            *errors.entry(k).or_default() += n;
        }
    }
    let rss_peak = match sampler {
        Some(s) => s.await.ok().map(|kib| kib as f64 / 1024.0),
        None => None,
    };
    let rss_hwm = o.pid.and_then(|pid| rss_kib(pid, "VmHWM:")).map(|kib| kib as f64 / 1024.0);
    latencies.sort_unstable();
    let secs = o.duration.as_secs_f64();
    let ok = latencies.len() as u64;
    let error_count: u64 = errors.values().sum();
    let latency = (!latencies.is_empty()).then(|| Latency {
        p50_ms: percentile(&latencies, 500),
        p90_ms: percentile(&latencies, 900),
        p99_ms: percentile(&latencies, 990),
        p999_ms: percentile(&latencies, 999),
        max_ms: percentile(&latencies, 1000),
        mean_ms: latencies.iter().map(|&l| f64::from(l)).sum::<f64>() / latencies.len() as f64 / 1000.0,
    });
    Ok(Report {
        provider: o.issuer.clone(),
        scenario: o.scenario,
        operation: o.scenario.operation(),
        concurrency: o.concurrency,
        duration_s: secs,
        ok,
        errors: error_count,
        error_kinds: errors,
        throughput: ok as f64 / secs,
        http_requests_per_s: requests as f64 / secs,
        http_requests_per_op: if ok + error_count > 0 { requests as f64 / (ok + error_count) as f64 } else { 0.0 },
        latency,
        rss_peak_mib: rss_peak,
        rss_hwm_mib: rss_hwm,
    })
}

/// Start-up time: from spawning `command` to the first successful answer of `probe_url`, `runs` times.
#[derive(Debug, Clone, Serialize)]
pub struct StartupReport {
    pub command: String,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub each_ms: Vec<f64>,
}

impl StartupReport {
    pub fn to_text(&self) -> String {
        format!(
            "start-up to first answer ({} runs of `{}`): median {:.1} ms, min {:.1} ms, max {:.1} ms\n",
            self.runs, self.command, self.median_ms, self.min_ms, self.max_ms
        )
    }
}

/// One GET over a fresh blocking connection; true on HTTP 200.
fn probe(origin: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(origin) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

pub fn startup(command: &[String], probe_url: &str, runs: usize, timeout: Duration) -> Result<StartupReport, String> {
    let (program, args) = command.split_first().ok_or("no command to start")?;
    let (origin, path) = split_url(probe_url)?;
    if probe(&origin, &path) {
        return Err(format!("{probe_url} already answers before the command started: stop that server first"));
    }
    let mut each = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let outcome = loop {
            if probe(&origin, &path) {
                break Ok(started.elapsed());
            }
            if let Ok(Some(status)) = child.try_wait() {
                break Err(format!("the command exited ({status}) before answering"));
            }
            if started.elapsed() > timeout {
                break Err(format!("no answer from {probe_url} within {} s", timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let _ = child.kill();
        let _ = child.wait();
        each.push(outcome?.as_secs_f64() * 1000.0);
        // Let the port be released before the next start.
        let wait = Instant::now();
        while probe(&origin, &path) && wait.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut sorted = each.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(StartupReport {
        command: command.join(" "),
        runs: each.len(),
        median_ms: sorted[sorted.len() / 2],
        min_ms: sorted[0],
        max_ms: sorted[sorted.len() - 1],
        each_ms: each,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_form_is_filled_and_the_approving_button_chosen() {
        let page = r#"<html><form class="x" method="post" action="/interaction/abc/login?x=1&amp;y=2">
            <input type="hidden" name="csrf" value="tok&quot;en">
            <input name="username" autocomplete="username">
            <input type="password" name="password">
            <button type="submit" name="decision" value="deny">No</button>
            <button type="submit" name="decision" value="allow">Yes</button>
            </form></html>"#;
        let f = fill_form(page, Some("alice"), Some("pw")).unwrap();
        assert_eq!(f.action.as_deref(), Some("/interaction/abc/login?x=1&y=2"));
        assert_eq!(f.method, "post");
        assert_eq!(
            f.fields,
            vec![
                ("csrf".to_string(), "tok\"en".to_string()),
                ("username".into(), "alice".into()),
                ("password".into(), "pw".into()),
                ("decision".into(), "allow".into()),
            ]
        );
    }

    #[test]
    fn the_form_with_the_password_field_wins_and_unquoted_attributes_parse() {
        let page = "<form action=/search><input name=q></form><form method=POST action='/login'><input type=hidden name=uid value=7><input name=login><input type=password name=password></form>";
        let f = fill_form(page, Some("bob"), Some("s")).unwrap();
        assert_eq!(f.action.as_deref(), Some("/login"));
        assert_eq!(f.method, "post");
        assert_eq!(f.fields[0], ("uid".to_string(), "7".to_string()));
        assert_eq!(f.fields[1], ("login".to_string(), "bob".to_string()));
        assert!(fill_form("<p>no form</p>", None, None).is_none());
    }

    #[test]
    fn cookies_are_kept_replaced_and_expired() {
        let mut headers = http::HeaderMap::new();
        headers.append("set-cookie", "a=1; Path=/; HttpOnly".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        let mut jar = Jar::default();
        jar.take(&Answer { status: 200, headers, body: Bytes::new() });
        assert_eq!(jar.header(), "a=1; b=2");
        let mut headers = http::HeaderMap::new();
        headers.append("set-cookie", "a=; Max-Age=0".parse().unwrap());
        headers.append("set-cookie", "b=3".parse().unwrap());
        jar.take(&Answer { status: 302, headers, body: Bytes::new() });
        assert_eq!(jar.header(), "b=3");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 500), 500.0);
        assert_eq!(percentile(&v, 990), 990.0);
        assert_eq!(percentile(&v, 999), 999.0);
        assert_eq!(percentile(&v, 1000), 1000.0);
        assert_eq!(split_url("http://127.0.0.1:3000/a?b=c").unwrap(), ("127.0.0.1:3000".into(), "/a?b=c".into()));
        assert!(split_url("https://example.com/").is_err());
    }
}

//! `candor flow`: one authorization-code flow (or, with `--device`, one device authorization
//! grant) against any OpenID provider, every step shown and checked: discovery, PKCE S256, state
//! and nonce, the callback parsed exactly, the code exchanged at once (or the device code polled
//! as RFC 8628 says), the ID token validated, userinfo, and optionally one refresh rotation.

use crate::jwt;
use crate::request::{UrlParts, encode, random};
use candor_core::pkce::s256;
use candor_core::tokens::b64url;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
pub struct Options {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scope: String,
    /// Use this redirect URI instead of a loopback listener (RFC 8252).
    pub redirect_uri: Option<String>,
    /// A callback URL pasted by the user (non-interactive).
    pub callback_url: Option<String>,
    /// Candor's own login form, driven over HTTP (non-interactive).
    pub login: Option<(String, String)>,
    pub open_browser: bool,
    pub refresh: bool,
    pub wait: Duration,
    /// A resource indicator (RFC 8707) sent to /authorize and the token endpoint; the access
    /// token is then checked as that resource would check it.
    pub resource: Option<String>,
    /// Use DPoP (RFC 9449): a fresh key pair, a proof with every token and userinfo request.
    pub dpop: bool,
    /// Run the device authorization grant (RFC 8628) instead of the authorization code flow.
    pub device: bool,
    /// End with RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the ID token as hint.
    pub logout: bool,
    /// Where the provider is asked to send the browser after logout (registered with it).
    pub post_logout_redirect_uri: Option<String>,
    /// Register a throwaway client first (RFC 7591) and delete it at the end (RFC 7592).
    pub register: bool,
    /// The initial access token the registration endpoint asks for, if any.
    pub initial_access_token: Option<String>,
}

/// The flow's DPoP key and the latest nonce the provider handed out (RFC 9449 §8).
pub struct DpopKey {
    key: candor_core::keys::SigningKey,
    jwk: Value,
    pub jkt: String,
    nonce: Option<String>,
    /// The last answer asked for a nonce and gave one: the request is to be sent again.
    nonce_asked: bool,
}

impl DpopKey {
    pub fn generate() -> Result<DpopKey, String> {
        use candor_core::keys::{SigningKey, generate};
        let record = generate(candor_core::model::SigningAlg::ES256, 0).map_err(|e| e.to_string())?;
        let key = SigningKey::parse(&record).map_err(|e| e.to_string())?;
        let mut jwk = key.public_jwk();
        if let Value::Object(m) = &mut jwk {
            m.remove("kid");
            m.remove("use");
        }
        let jkt = candor_core::dpop::thumbprint(&jwk)?;
        Ok(DpopKey { key, jwk, jkt, nonce: None, nonce_asked: false })
    }

    /// A new proof for `method` at `url`, with the hash of `access_token` at a resource.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> Result<String, String> {
        use aws_lc_rs::digest;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut claims = serde_json::json!({ "jti": random(22)?, "htm": method, "htu": url, "iat": now });
        if let Some(t) = access_token {
            claims["ath"] = Value::String(b64url(digest::digest(&digest::SHA256, t.as_bytes()).as_ref()));
        }
        if let Some(n) = &self.nonce {
            claims["nonce"] = Value::String(n.clone());
        }
        let header = serde_json::json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        self.key.sign_with_header(&header, &claims).map_err(|e| e.to_string())
    }

    /// Keeps the nonce of an answer; true if it asked for one (`use_dpop_nonce`) and gave it.
    fn learn(&mut self, headers: &reqwest::header::HeaderMap, error: Option<&str>) -> bool {
        let given = headers.get("dpop-nonce").and_then(|v| v.to_str().ok()).map(str::to_string);
        let asked = error == Some("use_dpop_nonce") && given.is_some();
        if given.is_some() {
            self.nonce = given;
        }
        asked
    }
}

/// The nonce a `WWW-Authenticate` challenge asked for (RFC 9449 §9), as its error.
fn challenge_error(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let text = headers.get("www-authenticate")?.to_str().ok()?;
    let start = text.find("error=\"")? + "error=\"".len();
    Some(text[start..].split('"').next()?.to_string())
}

/// Prints each step as it happens.
pub struct Printer {
    pub lines: Vec<String>,
    pub echo: bool,
}

impl Printer {
    fn step(&mut self, ok: bool, what: &str, detail: impl AsRef<str>) {
        let line = format!("{} {what}: {}", if ok { "ok  " } else { "FAIL" }, detail.as_ref());
        if self.echo {
            println!("{line}");
        }
        self.lines.push(line);
    }

    fn info(&mut self, s: impl AsRef<str>) {
        let line = format!("     {}", s.as_ref());
        if self.echo {
            println!("{line}");
        }
        self.lines.push(line);
    }
}

/// Shows the first characters of a secret value only.
pub fn mask(v: &str) -> String {
    let head: String = v.chars().take(6).collect();
    format!("{head}… ({} chars)", v.chars().count())
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<(u16, Value, Duration), String> {
    let started = Instant::now();
    let r = http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| e.to_string())?;
    let v = serde_json::from_str(&text)
        .map_err(|_| format!("GET {url}: {status}, not JSON: {}", text.chars().take(200).collect::<String>()))?;
    Ok((status, v, started.elapsed()))
}

/// Likely causes of a token endpoint error, whatever the provider.
fn likely_causes(error: &str) -> &'static [&'static str] {
    match error {
        "invalid_grant" => &[
            "the code expired (often 60 s or less): exchange it immediately",
            "the code was already used (a retry, a replayed request)",
            "redirect_uri differs from the one sent to /authorize (trailing slash, http/https, port)",
            "code_verifier is not the one whose challenge was sent",
            "the code was issued to another client (other credentials)",
            "the code was altered on the way (a #fragment or &state kept, double encoding)",
        ],
        "invalid_client" => &[
            "wrong client secret, or id and secret swapped",
            "the client is registered for another authentication method (Basic vs body)",
            "a public client sent a secret, or a confidential client none",
        ],
        "unauthorized_client" => &["the client is not registered for this grant type: enable it in the provider"],
        "invalid_request" => &["a parameter is missing or duplicated, or the body is not form-encoded"],
        "unsupported_grant_type" => &["grant_type is misspelled or not enabled on the provider"],
        "invalid_scope" => &["a scope is not allowed for this client, or a refresh asked for more than was granted"],
        "invalid_target" => &[
            "the resource is not registered with the provider, or not for this client (a trailing slash?)",
            "the token request names a resource the authorization request did not",
            "the provider issues one token per resource: name one",
        ],
        _ => &[],
    }
}

struct Endpoints {
    /// The issuer, without a trailing slash.
    issuer: String,
    authorize: Option<String>,
    /// RFC 8628 §4 `device_authorization_endpoint`.
    device: Option<String>,
    token: String,
    userinfo: Option<String>,
    jwks: String,
    basic: bool,
}

/// Runs the flow; `Ok(true)` when every step passed.
pub async fn run(o: &Options, p: &mut Printer) -> Result<bool, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    // 1. Discovery.
    let issuer = o.issuer.trim_end_matches('/');
    let (status, doc, took) = get_json(&http, &format!("{issuer}/.well-known/openid-configuration")).await?;
    if status != 200 {
        p.step(false, "discovery", format!("HTTP {status}"));
        return Ok(false);
    }
    let doc_issuer = doc["issuer"].as_str().unwrap_or("");
    p.step(
        doc_issuer.trim_end_matches('/') == issuer,
        "discovery",
        format!("issuer {doc_issuer} ({} ms)", took.as_millis()),
    );
    if doc_issuer.trim_end_matches('/') != issuer {
        p.info("the discovery document's issuer must equal the issuer URL exactly (OIDC Discovery §4.3)");
        return Ok(false);
    }
    let field =
        |k: &str| doc[k].as_str().map(str::to_string).ok_or_else(|| format!("the discovery document has no {k}"));
    let methods: Vec<&str> = doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let ep = Endpoints {
        issuer: issuer.to_string(),
        authorize: doc["authorization_endpoint"].as_str().map(str::to_string),
        device: doc["device_authorization_endpoint"].as_str().map(str::to_string),
        token: field("token_endpoint")?,
        userinfo: doc["userinfo_endpoint"].as_str().map(str::to_string),
        jwks: field("jwks_uri")?,
        basic: methods.is_empty() || methods.contains(&"client_secret_basic"),
    };
    if !o.register {
        return steps(&http, o, &doc, &ep, p).await;
    }
    // 1b. A client of the flow's own (RFC 7591), removed again at the end whatever happened.
    let Some(registered) = register(&http, o, &doc, &ep, p).await? else { return Ok(false) };
    let own = Options {
        client_id: registered.client_id.clone(),
        client_secret: registered.client_secret.clone(),
        ..o.clone()
    };
    let outcome = steps(&http, &own, &doc, &ep, p).await;
    let removed = unregister(&http, &registered, p).await;
    Ok(outcome? && removed)
}

/// A client the flow registered: its credentials and where to remove it.
struct Registered {
    client_id: String,
    client_secret: Option<String>,
    /// RFC 7592's configuration endpoint and token, when the provider gave them.
    configuration: Option<(String, String)>,
}

/// RFC 7591: registers a client for this flow (its redirect URI, or the loopback one, which
/// RFC 8252 providers accept on any port; the grants the flow uses; the scope).
async fn register(
    http: &reqwest::Client,
    o: &Options,
    doc: &Value,
    ep: &Endpoints,
    p: &mut Printer,
) -> Result<Option<Registered>, String> {
    let Some(endpoint) = doc["registration_endpoint"].as_str() else {
        p.step(false, "registration", "the discovery document has no registration_endpoint: the provider does not offer dynamic registration (or has it off)");
        return Ok(None);
    };
    let mut metadata = serde_json::json!({
        "client_name": "candor flow",
        "token_endpoint_auth_method": if ep.basic { "client_secret_basic" } else { "client_secret_post" },
        "scope": o.scope,
    });
    if o.device {
        metadata["grant_types"] = serde_json::json!(["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]);
        metadata["response_types"] = serde_json::json!([]);
    } else {
        let redirect = o.redirect_uri.clone().unwrap_or_else(|| "http://127.0.0.1/callback".into());
        metadata["grant_types"] = serde_json::json!(["authorization_code", "refresh_token"]);
        metadata["redirect_uris"] = serde_json::json!([redirect]);
        if let Some(bye) = &o.post_logout_redirect_uri {
            metadata["post_logout_redirect_uris"] = serde_json::json!([bye]);
        }
    }
    let mut req = http.post(endpoint).json(&metadata);
    if let Some(t) = &o.initial_access_token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.map_err(|e| format!("POST {endpoint}: {e}"))?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let Some(client_id) = body["client_id"].as_str().filter(|_| status == 201 || status == 200) else {
        let error = body["error"].as_str().unwrap_or("(no error code)");
        let why = body["error_description"].as_str().unwrap_or("");
        p.step(false, "registration", format!("HTTP {status} {error}: {why}"));
        if let Some(field) = body["facts"]["field"].as_str() {
            p.info(format!("the provider refused the field {field}"));
        }
        if status == 401 {
            p.info("the registration endpoint wants an initial access token: give --initial-access-token");
        }
        return Ok(None);
    };
    let configuration = match (body["registration_client_uri"].as_str(), body["registration_access_token"].as_str()) {
        (Some(uri), Some(token)) => Some((uri.to_string(), token.to_string())),
        _ => None,
    };
    p.step(
        true,
        "registration",
        format!(
            "HTTP {status}: client_id {client_id}, {} (RFC 7591)",
            if configuration.is_some() {
                "removed at the end (RFC 7592)"
            } else {
                "no configuration endpoint: it stays registered"
            }
        ),
    );
    Ok(Some(Registered {
        client_id: client_id.to_string(),
        client_secret: body["client_secret"].as_str().map(str::to_string),
        configuration,
    }))
}

/// RFC 7592 §2.3: deletes the flow's client; true when it is gone (or cannot be deleted at all).
async fn unregister(http: &reqwest::Client, registered: &Registered, p: &mut Printer) -> bool {
    let Some((uri, token)) = &registered.configuration else { return true };
    match http.delete(uri).bearer_auth(token).send().await {
        Ok(r) if r.status().as_u16() == 204 => {
            p.step(true, "unregistration", format!("client {} deleted (RFC 7592)", registered.client_id));
            true
        }
        Ok(r) => {
            p.step(false, "unregistration", format!("DELETE {uri}: HTTP {}", r.status().as_u16()));
            false
        }
        Err(e) => {
            p.step(false, "unregistration", format!("DELETE {uri}: {e}"));
            false
        }
    }
}

/// Steps 2 to 9, with the client `o` names.
async fn steps(
    http: &reqwest::Client,
    o: &Options,
    doc: &Value,
    ep: &Endpoints,
    p: &mut Printer,
) -> Result<bool, String> {
    let doc_issuer = doc["issuer"].as_str().unwrap_or("");
    let mut dpop = if o.dpop { Some(DpopKey::generate()?) } else { None };
    if let Some(k) = &dpop {
        p.info(format!("DPoP: a fresh ES256 key, thumbprint (jkt) {}", k.jkt));
    }
    let obtained = if o.device {
        device_flow(http, o, ep, &mut dpop, p).await?
    } else {
        code_flow(http, o, doc, ep, &mut dpop, p).await?
    };
    let Some(Obtained { tokens, nonce, mut ok }) = obtained else { return Ok(false) };
    // 5. The ID token.
    let access = tokens["access_token"].as_str().unwrap_or_default().to_string();
    let (_, jwks, _) = get_json(http, &ep.jwks).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if let Some(id) = tokens["id_token"].as_str() {
        let expect = jwt::Expect {
            issuer: doc_issuer,
            client_id: &o.client_id,
            nonce: nonce.as_deref(),
            access_token: Some(&access),
            now,
            leeway: 60,
        };
        match jwt::validate(id, &jwks, &expect) {
            Ok(claims) => {
                let checked =
                    if nonce.is_some() { "iss, aud, exp, iat, nonce, at_hash" } else { "iss, aud, exp, iat, at_hash" };
                p.step(true, "ID token", format!("signature (JWKS), {checked} valid"));
                p.info(format!("claims: {claims}"));
            }
            Err(e) => {
                p.step(false, "ID token", e);
                ok = false;
            }
        }
    } else if o.scope.split(' ').any(|s| s == "openid") {
        p.step(false, "ID token", "scope has openid but the response has no id_token");
        ok = false;
    }
    // 6. The access token, as a resource server would see it, bound to the DPoP key if asked.
    ok &= check_access_token(&access, &jwks, doc_issuer, o.resource.as_deref(), now, p);
    if let Some(k) = &dpop {
        ok &= check_dpop_binding(&tokens, &k.jkt, p);
    }
    // 7. Userinfo, with a token meant for it.
    if let Some(r) = &o.resource {
        p.info(format!("userinfo not called: the access token is for {r} (RFC 8707), not for the provider"));
    } else if let (Some(ui), false) = (&ep.userinfo, access.is_empty()) {
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            let req = match &dpop {
                Some(k) => http
                    .get(ui)
                    .header("Authorization", format!("DPoP {access}"))
                    .header("DPoP", k.proof("GET", ui, Some(&access))?),
                None => http.get(ui).bearer_auth(&access),
            };
            let r = req.send().await.map_err(|e| e.to_string())?;
            let asked = match &mut dpop {
                Some(k) => k.learn(r.headers(), challenge_error(r.headers()).as_deref()),
                None => false,
            };
            if asked && attempt == 1 {
                p.info("userinfo asked for a DPoP nonce (RFC 9449 §9): retried with it");
                continue;
            }
            break r;
        };
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        p.step(status == 200, "userinfo", format!("HTTP {status} {}", body.chars().take(300).collect::<String>()));
        ok &= status == 200;
    }
    // 8. One refresh rotation.
    if o.refresh {
        match tokens["refresh_token"].as_str() {
            None => {
                p.step(false, "refresh", "no refresh_token was issued (ask for offline_access?)");
                ok = false;
            }
            Some(rt) => {
                let mut form = vec![("grant_type", "refresh_token".to_string()), ("refresh_token", rt.to_string())];
                if let Some(r) = &o.resource {
                    form.push(("resource", r.clone()));
                }
                match token_request(http, o, ep, form, "refresh", &mut dpop, p).await? {
                    Some(next) => {
                        let rotated = next["refresh_token"].as_str().is_some_and(|n| n != rt);
                        p.step(true, "refresh rotation", if rotated { "a new refresh token was issued: store it, the old one is now dead on rotating providers" } else { "the same (or no) refresh token came back: this provider does not rotate" });
                        if let Some(id) = next["id_token"].as_str() {
                            let new_access = next["access_token"].as_str();
                            // OIDC Core §12.2: no nonce on refresh; the other checks hold.
                            let expect = jwt::Expect {
                                issuer: doc_issuer,
                                client_id: &o.client_id,
                                nonce: None,
                                access_token: new_access,
                                now,
                                leeway: 60,
                            };
                            match jwt::validate(id, &jwks, &expect) {
                                Ok(_) => p.step(true, "refreshed ID token", "signature, iss, aud, exp, at_hash valid"),
                                Err(e) => {
                                    p.step(false, "refreshed ID token", e);
                                    ok = false;
                                }
                            }
                        }
                    }
                    None => ok = false,
                }
            }
        }
    }
    // 9. RP-initiated logout.
    if o.logout {
        ok &= logout(http, o, doc, &tokens, p).await?;
    }
    Ok(ok)
}

/// Step 9: RP-initiated logout with the ID token as `id_token_hint`, `client_id`, a fresh
/// `state` and the post-logout redirect URI if one is given. With `--login-user` this flow's
/// cookies are the browser session that signed in, so the request is sent and its answer
/// checked; otherwise the URL is shown, to open in the browser that signed in.
async fn logout(
    http: &reqwest::Client,
    o: &Options,
    doc: &Value,
    tokens: &Value,
    p: &mut Printer,
) -> Result<bool, String> {
    let Some(end) = doc["end_session_endpoint"].as_str() else {
        p.step(
            false,
            "logout",
            "the discovery document has no end_session_endpoint: the provider does not support RP-Initiated Logout 1.0",
        );
        return Ok(false);
    };
    let Some(hint) = tokens["id_token"].as_str() else {
        p.step(false, "logout", "there is no ID token to send as id_token_hint (the scope needs openid)");
        return Ok(false);
    };
    let state = random(22)?;
    let mut url = format!(
        "{end}{}id_token_hint={}&client_id={}&state={state}",
        if end.contains('?') { "&" } else { "?" },
        encode(hint),
        encode(&o.client_id)
    );
    if let Some(u) = &o.post_logout_redirect_uri {
        url.push_str(&format!("&post_logout_redirect_uri={}", encode(u)));
    }
    if o.login.is_none() {
        p.step(true, "logout URL", "id_token_hint, client_id and state: open it in the browser that signed in");
        p.info(&url);
        return Ok(true);
    }
    let r = http.get(&url).send().await.map_err(|e| format!("GET {end}: {e}"))?;
    let status = r.status().as_u16();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let page = r.text().await.unwrap_or_default();
    match (status, location, &o.post_logout_redirect_uri) {
        (302 | 303, Some(to), Some(expected)) => {
            if to.split(['?', '#']).next() != Some(expected.split(['?', '#']).next().unwrap_or(expected)) {
                p.step(false, "logout", format!("redirected to {to}, not to the post_logout_redirect_uri {expected}"));
                return Ok(false);
            }
            let back = UrlParts::parse(&to)?;
            if back.get("state") != Some(state.as_str()) {
                let got = back.get("state").unwrap_or("(none)");
                p.step(false, "logout", format!("back at {expected} with state {got}, but {state} was sent (§3)"));
                return Ok(false);
            }
            p.step(
                true,
                "logout",
                format!("HTTP {status} to {expected} with the state sent: the provider ended the session"),
            );
            Ok(true)
        }
        (200, _, redirect) => {
            let asks = page.contains("<form");
            let detail = match (asks, redirect) {
                (true, _) => {
                    "the provider asks the user to confirm (it did not take the id_token_hint as the current session's)"
                }
                (false, Some(_)) => "the provider showed a page instead of returning to the post_logout_redirect_uri",
                (false, None) => "the provider showed its signed-out page (no post_logout_redirect_uri was given)",
            };
            p.step(true, "logout", format!("HTTP 200: {detail}"));
            Ok(true)
        }
        (status, location, _) => {
            let reason = page.split("/errors/").nth(1).and_then(|rest| rest.split(['"', '<']).next());
            let detail = match (reason, location) {
                (Some(reason), _) => format!("refused: {reason} (see {end} error page)"),
                (None, Some(to)) => format!("redirected to {to}"),
                (None, None) => page.chars().take(300).collect(),
            };
            p.step(false, "logout", format!("HTTP {status}: {detail}"));
            if reason.is_some_and(|r| r.starts_with("post_logout_redirect_uri")) {
                p.info("register the post-logout redirect URI with the provider, exactly as sent");
            }
            Ok(false)
        }
    }
}

/// What the grant under test handed over: the token response, the nonce the ID token must carry
/// (the code flow's), and whether every step on the way passed.
struct Obtained {
    tokens: Value,
    nonce: Option<String>,
    ok: bool,
}

/// Steps 2-4 of the authorization code flow: the authorization request, the callback, the
/// exchange. `None` when a step failed and the flow cannot go on.
async fn code_flow(
    http: &reqwest::Client,
    o: &Options,
    doc: &Value,
    ep: &Endpoints,
    dpop: &mut Option<DpopKey>,
    p: &mut Printer,
) -> Result<Option<Obtained>, String> {
    let doc_issuer = doc["issuer"].as_str().unwrap_or("");
    // 2. The authorization request.
    let verifier = random(64)?;
    let challenge = s256(&verifier);
    let state = random(22)?;
    let nonce = random(22)?;
    let (redirect_uri, listener) = match &o.redirect_uri {
        Some(u) => (u.clone(), None),
        None => {
            let l =
                tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("loopback listener: {e}"))?;
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            (format!("http://127.0.0.1:{port}/callback"), Some(l))
        }
    };
    let Some(authorize) = &ep.authorize else {
        p.step(false, "discovery", "the discovery document has no authorization_endpoint");
        return Ok(None);
    };
    let mut authorize_url = format!(
        "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        authorize,
        if authorize.contains('?') { "&" } else { "?" },
        encode(&o.client_id),
        encode(&redirect_uri),
        encode(&o.scope)
    );
    if let Some(r) = &o.resource {
        authorize_url.push_str(&format!("&resource={}", encode(r)));
    }
    p.step(
        true,
        "authorize URL",
        if o.resource.is_some() {
            "PKCE S256, state, nonce and resource (RFC 8707)"
        } else {
            "PKCE S256, state and nonce"
        },
    );
    p.info(&authorize_url);
    // 3. The callback.
    let started = Instant::now();
    let callback = if let Some(c) = &o.callback_url {
        c.clone()
    } else if let Some((user, password)) = &o.login {
        let done = redirect_uri.split('?').next().unwrap_or(&redirect_uri);
        drive_candor_login(http, &authorize_url, done, user, password).await?
    } else if let Some(l) = listener {
        if o.open_browser {
            let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
            let _ = std::process::Command::new(opener).arg(&authorize_url).spawn();
        }
        p.info(format!("waiting up to {} s for the browser to reach {redirect_uri}", o.wait.as_secs()));
        tokio::time::timeout(o.wait, accept_callback(l, &redirect_uri))
            .await
            .map_err(|_| "no callback arrived in time".to_string())??
    } else {
        return Err("with --redirect-uri, give --callback-url (the URL the browser landed on) or --login-user".into());
    };
    let cb = UrlParts::parse(&callback)?;
    if let Some(err) = cb.get("error") {
        p.step(false, "callback", format!("error={err}: {}", cb.get("error_description").unwrap_or("")));
        return Ok(None);
    }
    let Some(code) = cb.get("code").map(str::to_string) else {
        p.step(false, "callback", "no code in the callback");
        return Ok(None);
    };
    let mut ok = true;
    let state_ok = cb.get("state") == Some(state.as_str());
    p.step(
        state_ok,
        "callback state",
        if state_ok { "matches" } else { "differs from the one sent: possible CSRF or a mixed-up callback" },
    );
    ok &= state_ok;
    match cb.get("iss") {
        Some(iss) => {
            let iss_ok = iss == doc_issuer;
            p.step(iss_ok, "callback iss (RFC 9207)", iss);
            ok &= iss_ok;
        }
        None if doc["authorization_response_iss_parameter_supported"] == Value::Bool(true) => {
            p.step(false, "callback iss (RFC 9207)", "missing although the provider advertises it");
            ok = false;
        }
        None => {}
    }
    if let Some(fr) = &cb.fragment {
        p.info(format!("the callback carried the fragment #{fr}: ignored, it is not part of the code"));
    }
    p.step(true, "code received", format!("{} after the authorize request", fmt_ms(started.elapsed())));
    // 4. The exchange, at once.
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.clone()),
        ("redirect_uri", redirect_uri.clone()),
        ("code_verifier", verifier.clone()),
    ];
    if let Some(r) = &o.resource {
        form.push(("resource", r.clone()));
    }
    let Some(tokens) = token_request(http, o, ep, form, "code exchange", dpop, p).await? else {
        return Ok(None);
    };
    Ok(Some(Obtained { tokens, nonce: Some(nonce), ok }))
}

/// Steps 2-4 of the device authorization grant (RFC 8628): the device authorization request, the
/// user's part (shown, or Candor's verification page driven with `--login-user`), and the polls,
/// which keep the interval and slow down by 5 s at each `slow_down` as §3.5 requires.
async fn device_flow(
    http: &reqwest::Client,
    o: &Options,
    ep: &Endpoints,
    dpop: &mut Option<DpopKey>,
    p: &mut Printer,
) -> Result<Option<Obtained>, String> {
    let Some(endpoint) = &ep.device else {
        p.step(
            false,
            "device authorization endpoint",
            "the discovery document publishes no device_authorization_endpoint: this provider does not offer the device grant (RFC 8628 §4)",
        );
        return Ok(None);
    };
    let mut form = vec![("scope", o.scope.clone())];
    if let Some(r) = &o.resource {
        form.push(("resource", r.clone()));
    }
    let req = authenticated(http.post(endpoint), o, ep, &mut form);
    p.info(format!("POST {endpoint} scope={}", o.scope));
    let r = req.form(&form).send().await.map_err(|e| format!("POST {endpoint}: {e}"))?;
    let status = r.status().as_u16();
    let trace = r.headers().get("candor-trace-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status != 200 {
        report_refusal(http, o, ep, "device authorization", status, trace, &body, p).await;
        return Ok(None);
    }
    let mut ok = true;
    let text = |k: &str| body[k].as_str().map(str::to_string);
    // Google's first device endpoint named it verification_url; RFC 8628 §3.2 says verification_uri.
    let verification_uri = match (text("verification_uri"), text("verification_url")) {
        (Some(u), _) => Some(u),
        (None, Some(u)) => {
            p.info("the response names it verification_url (an early, non-standard name): RFC 8628 §3.2 says verification_uri");
            Some(u)
        }
        (None, None) => None,
    };
    let (Some(device_code), Some(user_code), Some(verification_uri)) =
        (text("device_code"), text("user_code"), verification_uri)
    else {
        p.step(
            false,
            "device authorization",
            format!("device_code, user_code and verification_uri are required (RFC 8628 §3.2): {body}"),
        );
        return Ok(None);
    };
    let Some(expires_in) = body["expires_in"].as_u64() else {
        p.step(false, "device authorization", "no expires_in, which RFC 8628 §3.2 requires");
        return Ok(None);
    };
    // RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
    let mut interval = body["interval"].as_u64().unwrap_or(5);
    p.step(
        true,
        "device authorization",
        format!(
            "user code {user_code}, device code {}, expires in {expires_in} s, poll every {interval} s{}",
            mask(&device_code),
            if body["interval"].is_null() { " (the default: no interval was given)" } else { "" }
        ),
    );
    let complete = text("verification_uri_complete");
    p.info(format!("the user opens {verification_uri} and enters {user_code}"));
    if let Some(c) = &complete {
        p.info(format!("or opens {c} (the code filled in)"));
    }
    // The user's part runs while the device polls, as on a real device.
    let page = match (&o.login, &complete) {
        (Some((user, password)), Some(url)) => {
            let (http, url, user, password) = (http.clone(), url.clone(), user.clone(), password.clone());
            Some(tokio::spawn(
                async move { drive_candor_login(&http, &url, "/device?result=", &user, &password).await },
            ))
        }
        (Some(_), None) => {
            p.info("--login-user needs verification_uri_complete to drive the page; enter the code by hand");
            None
        }
        (None, _) => None,
    };
    let deadline = Instant::now() + Duration::from_secs(expires_in).min(o.wait);
    let started = Instant::now();
    let (mut polls, mut pending, mut slowed) = (0u32, 0u32, 0u32);
    let tokens = loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if Instant::now() >= deadline {
            p.step(
                false,
                "device code exchange",
                format!("no decision after {} s of polling ({polls} polls)", started.elapsed().as_secs()),
            );
            return Ok(None);
        }
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code".to_string()),
            ("device_code", device_code.clone()),
        ];
        if let Some(r) = &o.resource {
            form.push(("resource", r.clone()));
        }
        let req = authenticated(http.post(&ep.token), o, ep, &mut form);
        polls += 1;
        let (status, trace, body) =
            send_token_following_nonce(&req, &form, &ep.token, dpop, "device code exchange", p).await?;
        match (status, body["error"].as_str()) {
            (200, _) => break body,
            (_, Some("authorization_pending")) => pending += 1,
            (_, Some("slow_down")) => {
                slowed += 1;
                interval += 5;
                p.info(format!(
                    "slow_down after {} s: polling every {interval} s from now on (RFC 8628 §3.5)",
                    started.elapsed().as_secs()
                ));
            }
            (_, Some("access_denied")) => {
                p.step(false, "device code exchange", "the user denied the request (access_denied): stop polling");
                return Ok(None);
            }
            (_, Some("expired_token")) => {
                p.step(
                    false,
                    "device code exchange",
                    "the device code expired before the user approved (expired_token): start again",
                );
                return Ok(None);
            }
            _ => {
                report_refusal(http, o, ep, "device code exchange", status, trace, &body, p).await;
                return Ok(None);
            }
        }
    };
    if let Some(page) = page {
        match page.await {
            Ok(Ok(done)) => p.step(true, "verification page", format!("code entered, signed in, approved ({done})")),
            Ok(Err(e)) => {
                p.step(false, "verification page", e);
                ok = false;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    p.step(
        true,
        "device code exchange",
        format!(
            "HTTP 200 after {} s and {polls} poll{} ({pending} authorization_pending, {slowed} slow_down): {}",
            started.elapsed().as_secs(),
            if polls == 1 { "" } else { "s" },
            token_summary(&tokens)
        ),
    );
    p.info(format!("response: {}", masked_json(&tokens)));
    Ok(Some(Obtained { tokens, nonce: None, ok }))
}

/// Reports what the access token is; a JWT access token (RFC 9068, or any token requested for a
/// resource) is validated as its resource server would. Returns false when a check fails.
fn check_access_token(
    access: &str,
    jwks: &Value,
    issuer: &str,
    resource: Option<&str>,
    now: i64,
    p: &mut Printer,
) -> bool {
    if access.is_empty() {
        return true;
    }
    let Ok((header, claims)) = jwt::decode(access) else {
        if resource.is_some() {
            p.info("the access token is opaque: the resource must introspect it (RFC 7662) to learn its audience");
        } else {
            p.info("the access token is opaque: only the provider (introspection, userinfo) can read it");
        }
        return true;
    };
    let typ = header["typ"].as_str().unwrap_or("").to_ascii_lowercase();
    if resource.is_none() && typ != "at+jwt" && typ != "application/at+jwt" {
        p.info(format!(
            "the access token is a JWT of typ {} (not RFC 9068's at+jwt), aud {}: a provider-specific format",
            header["typ"], claims["aud"]
        ));
        return true;
    }
    let expect = jwt::ExpectAccess { issuer, audience: resource, now, leeway: 60 };
    match jwt::validate_access_token(access, jwks, &expect) {
        Ok(claims) => {
            p.step(
                true,
                "access token (RFC 9068)",
                format!(
                    "typ at+jwt, signature (JWKS), iss, aud {}, exp valid; scope {}",
                    claims["aud"], claims["scope"]
                ),
            );
            true
        }
        Err(e) => {
            p.step(false, "access token (RFC 9068)", e);
            false
        }
    }
}

/// RFC 9449 §5: the provider bound the access token to the flow's key (`token_type` DPoP, and
/// `cnf.jkt` when the token is a JWT).
fn check_dpop_binding(tokens: &Value, jkt: &str, p: &mut Printer) -> bool {
    let token_type = tokens["token_type"].as_str().unwrap_or("");
    if !token_type.eq_ignore_ascii_case("dpop") {
        p.step(
            false,
            "DPoP binding",
            format!("token_type is {token_type:?}, not DPoP: the provider ignored the proof (is DPoP supported?)"),
        );
        return false;
    }
    let access = tokens["access_token"].as_str().unwrap_or_default();
    match jwt::decode(access).ok().map(|(_, c)| c["cnf"]["jkt"].clone()) {
        Some(Value::String(bound)) if bound != jkt => {
            p.step(false, "DPoP binding", format!("the access token's cnf.jkt {bound} is not the flow's key {jkt}"));
            false
        }
        Some(Value::String(_)) => {
            p.step(true, "DPoP binding", "token_type DPoP, cnf.jkt is the flow's key");
            true
        }
        _ => {
            p.step(true, "DPoP binding", "token_type DPoP");
            true
        }
    }
}

/// Sends one token request, with a new DPoP proof if the flow uses DPoP (which learns the
/// nonce of the answer); returns its status, Candor trace id and body.
async fn send_token(
    req: &reqwest::RequestBuilder,
    form: &[(&'static str, String)],
    url: &str,
    dpop: Option<&mut DpopKey>,
) -> Result<(u16, Option<String>, Value), String> {
    let mut req = req.try_clone().ok_or("the request cannot be repeated")?;
    if let Some(k) = &dpop {
        req = req.header("DPoP", k.proof("POST", url, None)?);
    }
    let r = req.form(form).send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let trace = headers.get("candor-trace-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if let Some(k) = dpop {
        k.nonce_asked = k.learn(&headers, body["error"].as_str());
    }
    Ok((status, trace, body))
}

/// `send_token`, once more with the nonce if the provider asked for one (RFC 9449 §8: the first
/// request learns it, the retry carries it).
async fn send_token_following_nonce(
    req: &reqwest::RequestBuilder,
    form: &[(&'static str, String)],
    url: &str,
    dpop: &mut Option<DpopKey>,
    what: &str,
    p: &mut Printer,
) -> Result<(u16, Option<String>, Value), String> {
    let answer = send_token(req, form, url, dpop.as_mut()).await?;
    match dpop.as_mut() {
        Some(k) if k.nonce_asked => {
            p.info(format!("{what}: the provider asked for a DPoP nonce (use_dpop_nonce): retried with it"));
            send_token(req, form, url, Some(k)).await
        }
        _ => Ok(answer),
    }
}

/// The tokens of a response, masked: `access_token cda_ab… (58 chars), …`.
fn token_summary(body: &Value) -> String {
    let shown: Vec<String> = ["access_token", "refresh_token", "id_token"]
        .iter()
        .filter_map(|k| body[*k].as_str().map(|v| format!("{k} {}", mask(v))))
        .collect();
    shown.join(", ")
}

/// The response with every token value masked.
fn masked_json(body: &Value) -> Value {
    let mut shown = body.clone();
    if let Value::Object(m) = &mut shown {
        for k in ["access_token", "refresh_token", "id_token"] {
            if let Some(Value::String(v)) = m.get(k) {
                let masked = mask(v);
                m.insert(k.to_string(), Value::String(masked));
            }
        }
    }
    shown
}

fn fmt_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The client's authentication on a request to the provider: Basic when it has a secret and the
/// provider takes Basic, the secret in the body otherwise, or only its `client_id` (a public client).
fn authenticated(
    req: reqwest::RequestBuilder,
    o: &Options,
    ep: &Endpoints,
    form: &mut Vec<(&'static str, String)>,
) -> reqwest::RequestBuilder {
    match (&o.client_secret, ep.basic) {
        (Some(s), true) => return req.basic_auth(&o.client_id, Some(s)),
        (Some(s), false) => {
            form.push(("client_id", o.client_id.clone()));
            form.push(("client_secret", s.clone()));
        }
        (None, _) => form.push(("client_id", o.client_id.clone())),
    }
    req
}

/// POSTs to the token endpoint and reports; `None` on an error response.
async fn token_request(
    http: &reqwest::Client,
    o: &Options,
    ep: &Endpoints,
    mut form: Vec<(&'static str, String)>,
    what: &str,
    dpop: &mut Option<DpopKey>,
    p: &mut Printer,
) -> Result<Option<Value>, String> {
    let req = authenticated(http.post(&ep.token), o, ep, &mut form);
    let shown: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            if matches!(*k, "code" | "code_verifier" | "refresh_token" | "client_secret") {
                format!("{k}={}", mask(v))
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    p.info(format!(
        "POST {} {}{}",
        ep.token,
        shown.join("&"),
        if o.client_secret.is_some() && ep.basic { " (client_secret_basic)" } else { "" }
    ));
    let started = Instant::now();
    let (status, trace, body) = send_token_following_nonce(&req, &form, &ep.token, dpop, what, p).await?;
    if status == 200 {
        p.step(
            true,
            what,
            format!(
                "HTTP 200 in {}: {} (expires_in {})",
                fmt_ms(started.elapsed()),
                token_summary(&body),
                body["expires_in"]
            ),
        );
        p.info(format!("response: {}", masked_json(&body)));
        return Ok(Some(body));
    }
    report_refusal(http, o, ep, what, status, trace, &body, p).await;
    Ok(None)
}

/// Reports a refusal of a request to the provider: the answer, the usual causes of its error and,
/// from a Candor provider, its own explanation of the trace (asked as the client that made it).
#[allow(clippy::too_many_arguments)]
async fn report_refusal(
    http: &reqwest::Client,
    o: &Options,
    ep: &Endpoints,
    what: &str,
    status: u16,
    trace: Option<String>,
    body: &Value,
    p: &mut Printer,
) {
    let error = body["error"].as_str().unwrap_or("");
    p.step(false, what, format!("HTTP {status} {body}"));
    for cause in likely_causes(error) {
        p.info(format!("likely: {cause}"));
    }
    // A Candor provider explains its own refusals to the client that made the request.
    if let (Some(trace), Some(_)) = (trace, body["reason"].as_str()) {
        let mut req = http.post(format!("{}/explain", ep.issuer));
        let mut form = vec![("trace_id", trace.clone())];
        match &o.client_secret {
            Some(s) if ep.basic => req = req.basic_auth(&o.client_id, Some(s)),
            Some(s) => {
                form.push(("client_id", o.client_id.clone()));
                form.push(("client_secret", s.clone()));
            }
            None => form.push(("client_id", o.client_id.clone())),
        }
        if let Ok(r) = req.form(&form).send().await
            && r.status().is_success()
            && let Ok(e) = r.json::<Value>().await
        {
            p.info(format!("Candor explains trace {trace}: {}", e["summary"].as_str().unwrap_or("")));
            for (k, v) in e["facts"].as_object().into_iter().flatten() {
                p.info(format!("  {k}: {v}"));
            }
            for f in e["fix"].as_array().into_iter().flatten() {
                p.info(format!("  fix: {}", f.as_str().unwrap_or("")));
            }
        }
    }
}

/// Accepts connections on the loopback listener until the callback path arrives.
async fn accept_callback(listener: tokio::net::TcpListener, redirect_uri: &str) -> Result<String, String> {
    let path = url::Url::parse(redirect_uri).map_err(|e| e.to_string())?.path().to_string();
    loop {
        let (mut sock, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        while n < buf.len() {
            let read = sock.read(&mut buf[n..]).await.map_err(|e| e.to_string())?;
            if read == 0 {
                break;
            }
            n += read;
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let is_callback = target.split('?').next() == Some(path.as_str());
        let page = if is_callback {
            "Candor flow received the callback. You can close this window."
        } else {
            "Not the callback."
        };
        let response = format!(
            "HTTP/1.1 {}\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{page}",
            if is_callback { "200 OK" } else { "404 Not Found" },
            page.len()
        );
        let _ = sock.write_all(response.as_bytes()).await;
        if is_callback {
            let origin = redirect_uri.split(path.as_str()).next().unwrap_or("");
            return Ok(format!("{origin}{target}"));
        }
    }
}

/// Drives Candor's own login and consent forms over HTTP (for CI), returning the callback URL.
/// Drives Candor's pages from `start_url` (the sign-in, consent and device code forms) until a
/// redirect whose Location starts with `done` (the client's redirect URI, or the device page's
/// result), which it returns.
async fn drive_candor_login(
    http: &reqwest::Client,
    start_url: &str,
    done: &str,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let origin = {
        let u = url::Url::parse(start_url).map_err(|e| e.to_string())?;
        u.origin().ascii_serialization()
    };
    let mut r = http.get(start_url).send().await.map_err(|e| e.to_string())?;
    for _ in 0..8 {
        let status = r.status().as_u16();
        if status == 302 || status == 303 {
            let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            if loc.starts_with(done) {
                return Ok(loc);
            }
            let next = if loc.starts_with('/') { format!("{origin}{loc}") } else { loc };
            r = http.get(&next).send().await.map_err(|e| e.to_string())?;
            continue;
        }
        let page = r.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!(
                "the provider answered {status} during login: {}",
                page.chars().take(300).collect::<String>()
            ));
        }
        let csrf = page
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .ok_or("no login or consent form on the page (not Candor?)")?
            .to_string();
        let action =
            page.split(r#"action=""#).nth(1).and_then(|s| s.split('"').next()).ok_or("no form action")?.to_string();
        let user_code = page
            .split(r#"name="user_code" value=""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        let form: Vec<(&str, &str)> = if action.ends_with("/login") {
            vec![("csrf", &csrf), ("username", user), ("password", password)]
        } else if action == "/device" {
            vec![("csrf", &csrf), ("user_code", &user_code)]
        } else {
            vec![("csrf", &csrf), ("decision", "allow")]
        };
        r = http.post(format!("{origin}{action}")).form(&form).send().await.map_err(|e| e.to_string())?;
        if r.status().as_u16() == 401 {
            return Err("the login form refused the username or password".into());
        }
    }
    Err("too many steps in the login".into())
}

//! `candor doctor`: every inconsistency between the authorize URL, the callback URL and the
//! token request, with the fix. Offline, provider-agnostic: nothing is sent anywhere.

use crate::request::{TokenRequest, UrlParts, parse_token_request};
use candor_core::pkce::{CodeVerifier, s256};
use candor_core::redirect_uri::difference;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// One inconsistency, with a stable id, what was seen and how to fix it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    pub fix: String,
}

/// What the developer pasted.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub authorize_url: Option<String>,
    pub callback_url: Option<String>,
    pub token_request: Option<String>,
    /// Further token requests of the same flow (a retry, a later refresh), checked against each other.
    pub more_token_requests: Vec<String>,
    /// The provider's discovery document.
    pub discovery: Option<Value>,
    /// Unix times of the callback and the token request, when known.
    pub callback_at: Option<i64>,
    pub token_at: Option<i64>,
    /// The provider's code lifetime in seconds (60 when unknown, the common value).
    pub code_lifetime: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    pub fn has(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f.id == id)
    }

    /// Human output.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if self.findings.is_empty() {
            s.push_str("No inconsistency found in what was given.\n");
            return s;
        }
        let warnings = self.findings.iter().filter(|f| f.severity == Severity::Warning).count();
        s.push_str(&format!("{} problem(s), {} warning(s)\n", self.errors(), warnings));
        for f in &self.findings {
            let tag = match f.severity {
                Severity::Error => "ERROR",
                Severity::Warning => "WARN ",
                Severity::Note => "NOTE ",
            };
            s.push_str(&format!("\n{tag} {}: {}\n", f.id, f.message));
            for d in &f.details {
                s.push_str(&format!("      {d}\n"));
            }
            s.push_str(&format!("      fix: {}\n", f.fix));
        }
        s
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(
        &mut self,
        id: &'static str,
        severity: Severity,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> &mut Finding {
        self.0.push(Finding { id, severity, message: message.into(), details: Vec::new(), fix: fix.into() });
        let last = self.0.len() - 1;
        &mut self.0[last]
    }
}

impl Finding {
    fn detail(&mut self, d: impl Into<String>) -> &mut Finding {
        self.details.push(d.into());
        self
    }
}

/// Shows two strings one above the other with a caret under the first difference.
fn diff_lines(label_a: &str, a: &str, label_b: &str, b: &str) -> Vec<String> {
    let pos = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let width = label_a.len().max(label_b.len());
    vec![
        format!("{label_a:<width$} {a:?}"),
        format!("{label_b:<width$} {b:?}"),
        format!("{:<width$}  {}^ first difference at character {}", "", " ".repeat(pos), pos + 1),
    ]
}

const GRANTS: [&str; 4] =
    ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"];

pub fn diagnose(input: &Input) -> Report {
    let mut f = Findings(Vec::new());
    let authorize = input.authorize_url.as_deref().map(UrlParts::parse);
    let callback = input.callback_url.as_deref().map(UrlParts::parse);
    let token = input.token_request.as_deref().map(parse_token_request);
    let authorize = match authorize {
        Some(Err(e)) => {
            f.add("authorize_url_unreadable", Severity::Error, e, "paste the full URL the app opened for /authorize");
            None
        }
        Some(Ok(a)) => Some(a),
        None => None,
    };
    let callback = match callback {
        Some(Err(e)) => {
            f.add(
                "callback_url_unreadable",
                Severity::Error,
                e,
                "paste the full URL the browser landed on after login",
            );
            None
        }
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let token = match token {
        Some(Err(e)) => {
            f.add(
                "token_request_unreadable",
                Severity::Error,
                e,
                "paste the curl command, the raw HTTP request, or key=value lines",
            );
            None
        }
        Some(Ok(t)) => Some(t),
        None => None,
    };
    if let Some(a) = &authorize {
        check_authorize(&mut f, a);
    }
    if let Some(c) = &callback {
        check_callback(&mut f, c, authorize.as_ref(), input.discovery.as_ref());
    }
    if let Some(t) = &token {
        check_token(&mut f, t, authorize.as_ref(), callback.as_ref(), input);
    }
    check_repeats(&mut f, input);
    if let (Some(d), Some(a)) = (&input.discovery, &authorize)
        && let Some(ep) = d["authorization_endpoint"].as_str()
        && ep != a.without_query
    {
        f.add(
            "authorize_endpoint_differs",
            Severity::Warning,
            "the authorize URL does not use the provider's authorization_endpoint",
            "take the endpoint from the discovery document",
        )
        .detail(format!("discovery: {ep}"))
        .detail(format!("used:      {}", a.without_query));
    }
    let mut findings = f.0;
    findings.sort_by_key(|x| x.severity);
    Report { findings }
}

/// A code or a refresh token sent in more than one request.
fn check_repeats(f: &mut Findings, input: &Input) {
    let all: Vec<TokenRequest> = input
        .token_request
        .iter()
        .chain(input.more_token_requests.iter())
        .filter_map(|t| parse_token_request(t).ok())
        .collect();
    for (name, id, fix) in [
        (
            "code",
            "code_used_twice",
            "a code works once (RFC 6749 §4.1.2): do not retry or replay the exchange; the provider revokes the tokens of a replayed code",
        ),
        (
            "refresh_token",
            "refresh_token_used_twice",
            "with rotation every refresh returns a new refresh token: store it and use it next time; serialise refreshes",
        ),
    ] {
        let values: Vec<String> =
            all.iter().filter_map(|t| t.params().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)).collect();
        if let Some(v) = values.iter().find(|v| values.iter().filter(|w| w == v).count() > 1) {
            let n = values.iter().filter(|w| *w == v).count();
            f.add(id, Severity::Error, format!("the same {name} is sent in {n} token requests"), fix);
        }
    }
}

fn check_authorize(f: &mut Findings, a: &UrlParts) {
    for (k, _) in &a.query {
        if a.count(k) > 1
            && !f.0.iter().any(|x| x.id == "authorize_parameter_duplicated" && x.message.contains(k.as_str()))
        {
            f.add(
                "authorize_parameter_duplicated",
                Severity::Error,
                format!("{k} appears {} times in the authorize URL", a.count(k)),
                "send each parameter once (RFC 6749 §3.1)",
            );
        }
    }
    match a.get("response_type") {
        None => {
            f.add(
                "response_type_missing",
                Severity::Error,
                "the authorize URL has no response_type",
                "add response_type=code",
            );
        }
        Some(rt) if rt != "code" => {
            f.add(
                "response_type_not_code",
                Severity::Warning,
                format!("response_type={rt}: this is not the authorization code flow"),
                "use response_type=code with PKCE (RFC 9700 §2.1.1)",
            );
        }
        _ => {}
    }
    if a.get("client_id").is_none() {
        f.add("client_id_missing_at_authorize", Severity::Error, "the authorize URL has no client_id", "add client_id");
    }
    match (a.get("code_challenge"), a.get("code_challenge_method")) {
        (Some(_), None) => {
            f.add(
                "pkce_method_missing",
                Severity::Warning,
                "code_challenge without code_challenge_method means plain (RFC 7636 §4.3), not S256",
                "add code_challenge_method=S256 (and send the S256 challenge)",
            );
        }
        (Some(_), Some("plain")) => {
            f.add(
                "pkce_plain",
                Severity::Warning,
                "code_challenge_method=plain sends the verifier itself",
                "use S256 (RFC 9700 §2.1.1)",
            );
        }
        (None, Some(_)) => {
            f.add(
                "pkce_challenge_missing",
                Severity::Error,
                "code_challenge_method without code_challenge",
                "send code_challenge=BASE64URL(SHA256(code_verifier))",
            );
        }
        (None, None) => {
            f.add(
                "pkce_not_used",
                Severity::Note,
                "no PKCE: the code can be used by whoever intercepts it",
                "send code_challenge with S256 (RFC 9700 §2.1.1: required for public clients, recommended for all)",
            );
        }
        _ => {}
    }
    if let Some(ch) = a.get("code_challenge")
        && (!(43..=128).contains(&ch.len()) || !ch.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)))
    {
        f.add("pkce_challenge_malformed", Severity::Error, format!("code_challenge has {} characters or characters outside A-Z a-z 0-9 - . _ ~", ch.len()), "an S256 challenge is 43 characters of base64url without padding ('=' is not allowed, '+' and '/' are not base64url)");
    }
    if a.get("redirect_uri").is_none() {
        f.add(
            "redirect_uri_missing_at_authorize",
            Severity::Note,
            "no redirect_uri at /authorize: the provider uses the registered one (OpenID Connect requires it)",
            "send redirect_uri explicitly, and the same value at /token",
        );
    }
}

fn check_callback(f: &mut Findings, c: &UrlParts, a: Option<&UrlParts>, discovery: Option<&Value>) {
    if let Some(err) = c.get("error") {
        f.add(
            "callback_error",
            Severity::Error,
            format!("the provider answered error={err}: {}", c.get("error_description").unwrap_or("")),
            "read error_description; the authorization failed before any code existed",
        );
    }
    if c.get("code").is_none() && c.get("error").is_none() {
        let in_fragment = c.fragment.as_deref().is_some_and(|fr| fr.contains("code="));
        f.add(
            if in_fragment { "code_in_fragment" } else { "callback_without_code" },
            Severity::Error,
            if in_fragment {
                "the code arrived in the URL fragment (response_mode=fragment?), not the query"
            } else {
                "the callback URL has no code"
            },
            "use response_type=code with the default query response mode, and read the code from the query string",
        );
    }
    if let Some(fr) = &c.fragment {
        f.add("callback_fragment", Severity::Note, format!("the callback URL ends with the fragment #{fr}"), "the fragment is not part of any query parameter: parse the URL with a URL parser (or split off everything from '#') before reading code and state")
            .detail("some providers and social logins append #_=_ or # to the first login's callback");
    }
    if let (Some(a), Some(cs)) = (a, c.get("state")) {
        match a.get("state") {
            Some(s) if s != cs => {
                f.add("state_mismatch", Severity::Error, "the callback's state differs from the one sent to /authorize", "the callback belongs to another authorization request (or the state was altered): start again; never accept a callback whose state you did not issue")
                    .detail(format!("authorize: {s:?}"))
                    .detail(format!("callback:  {cs:?}"));
            }
            None => {
                f.add(
                    "state_unexpected",
                    Severity::Warning,
                    "the callback carries a state but /authorize sent none",
                    "send a fresh unguessable state with every authorization request and check it",
                );
            }
            _ => {}
        }
    } else if a.is_some_and(|a| a.get("state").is_some()) && c.get("code").is_some() {
        f.add(
            "state_missing_in_callback",
            Severity::Error,
            "/authorize sent a state but the callback has none",
            "the callback URL was built or parsed wrongly (or comes from another request)",
        );
    }
    if let (Some(iss), Some(expected)) = (c.get("iss"), discovery.and_then(|d| d["issuer"].as_str()))
        && iss != expected
    {
        f.add(
            "iss_mismatch",
            Severity::Error,
            "the callback's iss is not this provider's issuer (RFC 9207: a mix-up attack or the wrong provider)",
            "reject the response; check which provider the user was sent to",
        )
        .detail(format!("expected: {expected}"))
        .detail(format!("received: {iss}"));
    }
}

/// How the code in the token request differs from the one in the callback.
fn code_defect(sent: &str, received: &str) -> Option<(&'static str, String)> {
    if sent == received {
        return None;
    }
    if let Some(suffix) = sent.strip_prefix(received) {
        if suffix.starts_with('#') || suffix.starts_with("%23") {
            return Some(("code_has_fragment", format!("the code sent has the URL fragment {suffix:?} appended")));
        }
        if suffix.starts_with('&') || suffix.starts_with("%26") {
            return Some((
                "code_has_parameter_glued_on",
                format!("the code sent has {suffix:?} appended (the next query parameter)"),
            ));
        }
        if suffix.trim().is_empty() {
            return Some(("code_has_whitespace", "the code sent has trailing whitespace".to_string()));
        }
        return Some(("code_has_extra_characters", format!("the code sent has {suffix:?} appended")));
    }
    if sent.trim() == received {
        return Some(("code_has_whitespace", "the code sent has leading or trailing whitespace".to_string()));
    }
    if received.starts_with(sent) {
        return Some((
            "code_truncated",
            format!("the code sent is {} characters shorter than the one received", received.len() - sent.len()),
        ));
    }
    let encoded: String = url::form_urlencoded::byte_serialize(received.as_bytes()).collect();
    if sent == encoded || candor_core::tokens::percent_decode(sent) == received {
        return Some((
            "code_percent_encoded_twice",
            "the code sent is still percent-encoded: it was encoded twice".to_string(),
        ));
    }
    if sent.replace(' ', "+") == received || sent.replace('+', " ") == received {
        return Some((
            "code_plus_space",
            "a '+' in the code became a space (or the reverse): it was not form-encoded in the body".to_string(),
        ));
    }
    Some(("code_differs", "the code sent is not the one in the callback (another login's code?)".to_string()))
}

fn check_token(f: &mut Findings, t: &TokenRequest, a: Option<&UrlParts>, c: Option<&UrlParts>, input: &Input) {
    for note in &t.notes {
        f.add(
            "request_shape",
            Severity::Error,
            note.clone(),
            "send POST with an application/x-www-form-urlencoded body",
        );
    }
    if t.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("POST")) {
        f.add(
            "token_method_not_post",
            Severity::Error,
            format!("the token request uses {}", t.method.as_deref().unwrap_or("")),
            "RFC 6749 §3.2: the client MUST use POST",
        );
    }
    if t.is_json() {
        f.add("json_body", Severity::Warning, "the token request body is JSON", "RFC 6749 §4.1.3 defines application/x-www-form-urlencoded; many providers refuse JSON or read no parameter from it. Send a form body (curl -d k=v, not --json)");
    } else if let Some(m) = t.media_type()
        && m != "application/x-www-form-urlencoded"
    {
        f.add(
            "content_type_wrong",
            Severity::Error,
            format!("Content-Type is {m}"),
            "use Content-Type: application/x-www-form-urlencoded",
        );
    }
    let params = t.params();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for (k, _) in &params {
        let n = params.iter().filter(|(x, _)| x == k).count();
        if n > 1 && !f.0.iter().any(|x| x.id == "token_parameter_duplicated" && x.message.starts_with(k.as_str())) {
            f.add("token_parameter_duplicated", Severity::Error, format!("{k} appears {n} times in the token request"), "send each parameter once (RFC 6749 §3.1): check for a parameter both in the URL and the body, or added twice by a library");
        }
    }
    match get("grant_type") {
        None => {
            f.add(
                "grant_type_missing",
                Severity::Error,
                "the token request has no grant_type",
                "add grant_type=authorization_code",
            );
        }
        Some(g) if !GRANTS.contains(&g) => {
            let close = GRANTS.iter().find(|known| {
                let norm =
                    |s: &str| s.to_ascii_lowercase().replace(['-', ' '], "_").replace("authorisation", "authorization");
                norm(g) == **known || g.eq_ignore_ascii_case("code") && **known == "authorization_code"
            });
            f.add(
                "grant_type_unknown",
                Severity::Error,
                format!("grant_type={g:?} is not a grant type"),
                match close {
                    Some(k) => format!("use grant_type={k}"),
                    None => "use grant_type=authorization_code".to_string(),
                },
            );
        }
        _ => {}
    }
    // Client identity and authentication.
    let basic = t.basic();
    if let Some(Err(e)) = &basic {
        f.add(
            "basic_auth_malformed",
            Severity::Error,
            format!("the Authorization: Basic header cannot be decoded: {e}"),
            "Basic credentials are base64(urlencode(client_id) ':' urlencode(client_secret))",
        );
    }
    let basic_id = basic.as_ref().and_then(|b| b.as_ref().ok()).map(|(id, _)| id.clone());
    if basic_id.is_some() && get("client_secret").is_some() {
        f.add(
            "client_secret_twice",
            Severity::Error,
            "the client authenticates twice: Basic header and client_secret in the body",
            "RFC 6749 §2.3: use one method only (the one registered for the client)",
        );
    }
    let token_client = basic_id.clone().or_else(|| get("client_id").map(str::to_string));
    if let (Some(b), Some(body_id)) = (&basic_id, get("client_id"))
        && b != body_id
    {
        f.add(
            "client_id_conflict",
            Severity::Error,
            "client_id in the body differs from the Basic header's",
            "send one client_id",
        )
        .detail(format!("header: {b:?}"))
        .detail(format!("body:   {body_id:?}"));
    }
    if token_client.is_none() {
        f.add(
            "client_missing",
            Severity::Error,
            "the token request names no client (no Basic header, no client_id)",
            "authenticate with the registered method, or send client_id for a public client",
        );
    }
    if let (Some(a), Some(tc)) = (a, &token_client)
        && let Some(ac) = a.get("client_id")
        && ac != tc
    {
        f.add("client_id_mismatch", Severity::Error, "the token request's client differs from the authorize request's: the code was issued to the other one", "exchange the code with the credentials of the client that requested it (staging vs production credentials?)")
                    .detail(format!("authorize: {ac:?}"))
                    .detail(format!("token:     {tc:?}"));
    }
    // The code checks apply unless the request is plainly another grant (a typo still gets them).
    if get("grant_type").is_some_and(|g| g != "authorization_code" && GRANTS.contains(&g)) {
        return;
    }
    // The code.
    let code = get("code");
    match (code, c.and_then(|c| c.get("code"))) {
        (None, _) => {
            f.add(
                "code_missing",
                Severity::Error,
                "the token request has no code",
                "send code= the value of the callback's code parameter",
            );
        }
        (Some(sent), Some(received)) => {
            if let Some((id, msg)) = code_defect(sent, received) {
                f.add(id, Severity::Error, msg, "take the code from the callback with a URL parser (query parameters only), decode it once, and form-encode it once in the token request");
            }
        }
        (Some(sent), None) => {
            if let Some(i) = sent.find('#') {
                f.add(
                    "code_has_fragment",
                    Severity::Error,
                    format!("the code ends with {:?}: the URL fragment was kept", &sent[i..]),
                    "the fragment is not part of the code: stop at '#' when reading the callback",
                );
            } else if sent.contains('&') || sent.contains("state=") {
                f.add(
                    "code_has_parameter_glued_on",
                    Severity::Error,
                    "the code contains '&' or 'state=': the next query parameter was kept",
                    "split the query string at '&' (use a URL parser)",
                );
            } else if sent.trim() != sent {
                f.add(
                    "code_has_whitespace",
                    Severity::Error,
                    "the code has leading or trailing whitespace",
                    "trim what you copy",
                );
            } else if sent.contains('%') {
                f.add(
                    "code_percent_encoded_twice",
                    Severity::Warning,
                    "the code still contains percent-escapes after decoding: it may be encoded twice",
                    "decode the callback's query once and encode the body once",
                );
            }
        }
    }
    if let Some(raw) = t.raw_form_value("code")
        && raw.contains('+')
    {
        f.add(
            "code_plus_decodes_to_space",
            Severity::Error,
            "the code contains a raw '+', which a form body decodes to a space",
            "form-encode the code ('+' becomes %2B)",
        );
    }
    // redirect_uri: RFC 6749 §4.1.3 "identical".
    let token_uri = get("redirect_uri");
    if let Some(uri) = token_uri
        && uri.contains('%')
        && !uri.contains("://")
    {
        f.add(
            "redirect_uri_encoded_twice",
            Severity::Error,
            "redirect_uri is still percent-encoded after decoding the body: it was encoded twice",
            "encode the value once (a library that encodes already must get the plain URL)",
        )
        .detail(format!("received: {uri:?}"));
    }
    if let Some(a) = a {
        match (a.get("redirect_uri"), token_uri) {
            (Some(au), None) => {
                f.add(
                    "redirect_uri_missing_at_token",
                    Severity::Error,
                    "redirect_uri was sent to /authorize but not to /token",
                    "RFC 6749 §4.1.3: send the identical redirect_uri with the token request",
                )
                .detail(format!("authorize: {au:?}"));
            }
            (Some(au), Some(tu)) if au != tu => {
                let kind = difference(au, tu);
                let finding = f.add("redirect_uri_mismatch", Severity::Error, format!("redirect_uri differs between /authorize and /token ({})", kind.as_str()), "RFC 6749 §4.1.3: the two values must be identical strings: same scheme, host case, port, path, trailing slash, query and encoding");
                for line in diff_lines("authorize:", au, "token:", tu) {
                    finding.detail(line);
                }
            }
            _ => {}
        }
        // PKCE.
        let challenge = a.get("code_challenge");
        let method = a.get("code_challenge_method").unwrap_or("plain");
        match (challenge, get("code_verifier")) {
            (Some(_), None) => {
                f.add(
                    "pkce_verifier_missing",
                    Severity::Error,
                    "/authorize received a code_challenge but the token request has no code_verifier",
                    "send the code_verifier whose challenge you sent",
                );
            }
            (None, Some(_)) => {
                f.add(
                    "pkce_verifier_unexpected",
                    Severity::Error,
                    "a code_verifier is sent but /authorize received no code_challenge",
                    "send the challenge at /authorize (RFC 9700 §2.1.1: servers refuse a verifier without a challenge)",
                );
            }
            (Some(ch), Some(v)) => match CodeVerifier::parse(v) {
                Err(r) => {
                    f.add(
                        "pkce_verifier_malformed",
                        Severity::Error,
                        format!(
                            "the code_verifier is malformed: {}",
                            r.facts.get("problem").and_then(Value::as_str).unwrap_or("")
                        ),
                        "a verifier is 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)",
                    );
                }
                Ok(v) => {
                    let derived = if method == "S256" { s256(v.as_str()) } else { v.as_str().to_string() };
                    if derived != ch {
                        let finding = f.add("pkce_verifier_mismatch", Severity::Error, format!("the code_verifier does not match the code_challenge ({method})"), "use the verifier created together with this challenge: keep it in the session (or app state) between the two requests; do not regenerate it");
                        finding.detail(format!("challenge sent to /authorize:        {ch}"));
                        finding.detail(format!("{method} of the verifier sent to /token: {derived}"));
                        if method == "S256" && v.as_str() == ch {
                            finding.detail("the verifier sent is the challenge itself: send the original random value, not its hash");
                        } else if method == "plain" && s256(v.as_str()) == ch {
                            finding.detail("the challenge is the S256 of this verifier but no code_challenge_method=S256 was sent: add it");
                        }
                    }
                }
            },
            (None, None) => {}
        }
    }
    // Code age.
    if let (Some(cb), Some(tk)) = (input.callback_at, input.token_at) {
        let lifetime = input.code_lifetime.unwrap_or(60);
        if tk - cb > lifetime {
            f.add(
                "code_too_old",
                Severity::Error,
                format!("the code was exchanged {} s after the callback; it lives {lifetime} s", tk - cb),
                "exchange the code immediately in the callback handler (no queue); check clock skew and retries",
            );
        }
    }
    // Discovery.
    if let Some(d) = &input.discovery {
        if let (Some(ep), Some(url)) = (d["token_endpoint"].as_str(), t.url.as_deref())
            && ep != url.split('?').next().unwrap_or(url)
        {
            f.add(
                "token_endpoint_differs",
                Severity::Warning,
                "the token request is not sent to the provider's token_endpoint",
                "take token_endpoint from the discovery document",
            )
            .detail(format!("discovery: {ep}"))
            .detail(format!("used:      {url}"));
        }
        if let Some(methods) = d["token_endpoint_auth_methods_supported"].as_array() {
            let used = if basic_id.is_some() {
                "client_secret_basic"
            } else if get("client_secret").is_some() {
                "client_secret_post"
            } else {
                "none"
            };
            if !methods.iter().any(|m| m.as_str() == Some(used)) {
                f.add(
                    "auth_method_unsupported",
                    Severity::Warning,
                    format!("the request authenticates with {used}, which the provider does not list"),
                    format!("use one of {}", methods.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(authorize: Option<&str>, callback: Option<&str>, token: Option<&str>) -> Report {
        diagnose(&Input {
            authorize_url: authorize.map(str::to_string),
            callback_url: callback.map(str::to_string),
            token_request: token.map(str::to_string),
            ..Input::default()
        })
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn authorize(redirect: &str) -> String {
        format!(
            "https://id.example.com/authorize?response_type=code&client_id=app&redirect_uri={}&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    }

    #[test]
    fn a_consistent_exchange_has_no_errors() {
        let r = run(
            Some(&authorize("https://app.example.com/cb")),
            Some("https://app.example.com/cb?code=Q8f2kX&state=s1"),
            Some(&format!(
                "curl -u app:secret https://id.example.com/token -d grant_type=authorization_code -d code=Q8f2kX -d redirect_uri=https://app.example.com/cb -d code_verifier={VERIFIER}"
            )),
        );
        assert_eq!(r.errors(), 0, "{}", r.render());
    }

    #[test]
    fn a_trailing_slash_is_shown_with_a_caret() {
        let r = run(
            Some(&authorize("https://app.example.com/callback/")),
            None,
            Some(&format!(
                "grant_type=authorization_code\nclient_id=app\ncode=x\nredirect_uri=https://app.example.com/callback\ncode_verifier={VERIFIER}"
            )),
        );
        let f = r.findings.iter().find(|f| f.id == "redirect_uri_mismatch").unwrap();
        assert!(f.message.contains("trailing_slash"));
        assert!(f.details[2].contains("first difference at character 33"), "{:?}", f.details);
    }

    #[test]
    fn a_kept_fragment_is_found_from_the_callback_and_the_request() {
        let r = run(
            Some(&authorize("https://app.example.com/cb")),
            Some("https://app.example.com/cb?code=Q8f2kX&state=s1#_=_"),
            Some(&format!(
                "curl https://id.example.com/token -u app:s -d grant_type=authorization_code -d 'code=Q8f2kX#_=_' -d redirect_uri=https://app.example.com/cb -d code_verifier={VERIFIER}"
            )),
        );
        assert!(r.has("code_has_fragment"), "{}", r.render());
        assert!(r.has("callback_fragment"));
    }

    #[test]
    fn a_regenerated_verifier_is_found_by_computing_s256() {
        let other = "x".repeat(43);
        let r = run(
            Some(&authorize("https://a/cb")),
            None,
            Some(&format!(
                "grant_type=authorization_code\nclient_id=app\ncode=c\nredirect_uri=https://a/cb\ncode_verifier={other}"
            )),
        );
        assert!(r.has("pkce_verifier_mismatch"));
        let r = run(
            Some(&authorize("https://a/cb")),
            None,
            Some(&format!(
                "grant_type=authorization_code\nclient_id=app\ncode=c\nredirect_uri=https://a/cb\ncode_verifier={CHALLENGE}"
            )),
        );
        let f = r.findings.iter().find(|f| f.id == "pkce_verifier_mismatch").unwrap();
        assert!(f.details.iter().any(|d| d.contains("the challenge itself")));
    }

    #[test]
    fn json_bodies_typos_duplicates_and_double_auth_are_reported() {
        let r = run(
            None,
            None,
            Some(
                r#"curl https://x/token -u app:s -H 'Content-Type: application/json' -d '{"grant_type":"authorization-code","code":"c","client_secret":"s"}'"#,
            ),
        );
        for id in ["json_body", "grant_type_unknown", "client_secret_twice"] {
            assert!(r.has(id), "{id}: {}", r.render());
        }
        assert!(r.findings.iter().any(|f| f.fix.contains("authorization_code")));
        let r = run(None, None, Some("grant_type=authorization_code&code=a&code=b&client_id=app"));
        assert!(r.has("token_parameter_duplicated"));
    }

    #[test]
    fn another_clients_credentials_and_a_late_exchange_are_found() {
        let mut input = Input {
            authorize_url: Some(authorize("https://a/cb")),
            token_request: Some(format!(
                "curl https://x/token -u other:s -d grant_type=authorization_code -d code=c -d redirect_uri=https://a/cb -d code_verifier={VERIFIER}"
            )),
            callback_at: Some(1000),
            token_at: Some(1090),
            ..Input::default()
        };
        let r = diagnose(&input);
        assert!(r.has("client_id_mismatch") && r.has("code_too_old"), "{}", r.render());
        input.token_at = Some(1010);
        assert!(!diagnose(&input).has("code_too_old"));
    }
}

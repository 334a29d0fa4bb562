//! Redirect URIs: registration rules, the exact-match rule, and naming the difference when they differ.

use crate::tokens::percent_decode;
use serde::Serialize;
use url::Url;

/// Checks a URI offered for registration (RFC 6749 §3.1.2: absolute, no fragment).
pub fn validate_for_registration(uri: &str) -> Result<(), String> {
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment (RFC 6749 §3.1.2)".into());
    }
    let parsed = Url::parse(uri).map_err(|e| format!("not an absolute URI: {e}"))?;
    if parsed.cannot_be_a_base() && !parsed.scheme().contains('.') {
        return Err("not a hierarchical URI".into());
    }
    Ok(())
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Whether `requested` is allowed by the `registered` URI.
///
/// Exact string comparison (RFC 9700 §2.1), except RFC 8252 §7.3: for `http` on a loopback IP
/// literal "the authorization server MUST allow any port to be specified at the time of the request".
pub fn matches_registered(requested: &str, registered: &str) -> bool {
    if requested == registered {
        return true;
    }
    let (Ok(req), Ok(reg)) = (Url::parse(requested), Url::parse(registered)) else {
        return false;
    };
    if reg.scheme() != "http" || !is_loopback_host(&reg) || requested.contains('#') {
        return false;
    }
    let mut req_without_port = req.clone();
    let mut reg_without_port = reg.clone();
    if req_without_port.set_port(None).is_err() || reg_without_port.set_port(None).is_err() {
        return false;
    }
    // Compare the rest exactly as written: strip the port from both strings' parsed forms and
    // also require the raw strings to agree apart from the port, so normalisation never widens a match.
    req_without_port.as_str() == reg_without_port.as_str() && strip_port(requested) == strip_port(registered)
}

fn strip_port(uri: &str) -> String {
    // scheme://host[:port]/rest -> scheme://host/rest, on the raw string.
    let Some(after_scheme) = uri.find("://").map(|i| i + 3) else {
        return uri.to_string();
    };
    let rest = &uri[after_scheme..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    format!("{}{}{}", &uri[..after_scheme], host, &rest[authority_end..])
}

/// The kind of difference between the redirect_uri sent to /authorize and the one at /token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UriDifference {
    TrailingSlash,
    Scheme,
    HostCase,
    Host,
    Port,
    Path,
    PathCase,
    Query,
    PercentEncoding,
    Whitespace,
    Fragment,
    Other,
}

impl UriDifference {
    pub fn as_str(self) -> &'static str {
        match self {
            UriDifference::TrailingSlash => "trailing_slash",
            UriDifference::Scheme => "scheme",
            UriDifference::HostCase => "host_case",
            UriDifference::Host => "host",
            UriDifference::Port => "port",
            UriDifference::Path => "path",
            UriDifference::PathCase => "path_case",
            UriDifference::Query => "query",
            UriDifference::PercentEncoding => "percent_encoding",
            UriDifference::Whitespace => "whitespace",
            UriDifference::Fragment => "fragment",
            UriDifference::Other => "other",
        }
    }
}

/// The registered URI that shares the longest prefix with `received`, and how they differ.
pub fn closest<'r>(received: &str, registered: &'r [String]) -> Option<(&'r str, UriDifference)> {
    let common = |r: &&String| r.bytes().zip(received.bytes()).take_while(|(a, b)| a == b).count();
    registered.iter().max_by_key(common).map(|c| (c.as_str(), difference(c, received)))
}

/// Names how `received` differs from `expected` (the first difference that explains it).
pub fn difference(expected: &str, received: &str) -> UriDifference {
    if expected.trim() == received.trim() {
        return UriDifference::Whitespace;
    }
    if received.contains('#') && !expected.contains('#') {
        return UriDifference::Fragment;
    }
    let trim = |s: &str| s.trim_end_matches('/').to_string();
    if trim(expected) == trim(received) {
        return UriDifference::TrailingSlash;
    }
    if percent_decode(expected) == percent_decode(received) {
        return UriDifference::PercentEncoding;
    }
    let (Ok(e), Ok(r)) = (Url::parse(expected), Url::parse(received)) else {
        return UriDifference::Other;
    };
    if e.scheme() != r.scheme() {
        return UriDifference::Scheme;
    }
    let raw_host = |s: &str| {
        s.split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', ':']).next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let (eh, rh) = (raw_host(expected), raw_host(received));
    if eh != rh {
        return if eh.eq_ignore_ascii_case(&rh) { UriDifference::HostCase } else { UriDifference::Host };
    }
    if e.port_or_known_default() != r.port_or_known_default() || e.port() != r.port() {
        return UriDifference::Port;
    }
    if e.path() != r.path() {
        if e.path().trim_end_matches('/') == r.path().trim_end_matches('/') {
            return UriDifference::TrailingSlash;
        }
        if e.path().eq_ignore_ascii_case(r.path()) {
            return UriDifference::PathCase;
        }
        return UriDifference::Path;
    }
    if e.query() != r.query() {
        return UriDifference::Query;
    }
    UriDifference::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only_for_ordinary_uris() {
        assert!(matches_registered("https://app.example.com/cb", "https://app.example.com/cb"));
        assert!(!matches_registered("https://app.example.com/cb/", "https://app.example.com/cb"));
        assert!(!matches_registered("https://APP.example.com/cb", "https://app.example.com/cb"));
        assert!(!matches_registered("https://app.example.com:444/cb", "https://app.example.com/cb"));
        assert!(!matches_registered("https://app.example.com/cb?x=1", "https://app.example.com/cb"));
    }

    #[test]
    fn loopback_ip_literals_accept_any_port_over_http() {
        assert!(matches_registered("http://127.0.0.1:51234/cb", "http://127.0.0.1/cb"));
        assert!(matches_registered("http://127.0.0.1:51234/cb", "http://127.0.0.1:8000/cb"));
        assert!(matches_registered("http://[::1]:4000/cb", "http://[::1]/cb"));
        assert!(!matches_registered("http://127.0.0.1:51234/other", "http://127.0.0.1/cb"));
        assert!(!matches_registered("https://127.0.0.1:51234/cb", "https://127.0.0.1/cb"));
        // "localhost" is not an IP literal (RFC 8252 §8.3).
        assert!(!matches_registered("http://localhost:51234/cb", "http://localhost/cb"));
    }

    #[test]
    fn registration_rejects_fragments_and_relative_uris() {
        assert!(validate_for_registration("https://a.example/cb#x").is_err());
        assert!(validate_for_registration("/cb").is_err());
        assert!(validate_for_registration("com.example.app:/oauth").is_ok());
        assert!(validate_for_registration("https://a.example/cb").is_ok());
    }

    #[test]
    fn differences_are_named() {
        use UriDifference::*;
        let d = |a, b| difference(a, b);
        assert_eq!(d("https://a.example/cb/", "https://a.example/cb"), TrailingSlash);
        assert_eq!(d("https://a.example/cb", "http://a.example/cb"), Scheme);
        assert_eq!(d("https://a.example/cb", "https://A.example/cb"), HostCase);
        assert_eq!(d("https://a.example/cb", "https://b.example/cb"), Host);
        assert_eq!(d("https://a.example/cb", "https://a.example:8443/cb"), Port);
        assert_eq!(d("https://a.example/cb", "https://a.example/cb?x=1"), Query);
        assert_eq!(d("https://a.example/a%20b", "https://a.example/a b"), PercentEncoding);
        assert_eq!(d("https://a.example/cb", "https://a.example/cb "), Whitespace);
        assert_eq!(d("https://a.example/cb", "https://a.example/other"), Path);
        assert_eq!(d("https://a.example/Cb", "https://a.example/cb"), PathCase);
    }
}

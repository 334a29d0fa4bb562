//! Resource indicators (RFC 8707): which API an access token is for.
//!
//! An authorization request may name several resources (one `resource` parameter each); the grant
//! remembers them, and each token request names the one resource its access token is for, or
//! none when the grant names exactly one. Every access token is audience-restricted to one
//! resource, or, without a resource, to Candor itself (its userinfo endpoint).

use crate::model::{Client, Resource};
use crate::params::Params;
use crate::redirect_uri::UriDifference;
use crate::rejection::{Reason, Rejection};
use crate::scope::Scope;
use crate::store::Store;
use crate::tokens::safe_identifier;

/// The parameter's name (RFC 8707 §2).
pub const PARAMETER: &str = "resource";

/// Checks the syntax RFC 8707 §2 requires: an absolute URI without a fragment.
pub fn check_indicator(value: &str) -> Result<(), Rejection> {
    let refuse = |problem: &str| {
        Err(Rejection::new(Reason::ResourceInvalid).with("resource", safe_identifier(value)).with("problem", problem))
    };
    if value.contains('#') {
        return refuse("it has a #fragment, which a resource indicator must not have");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("a URI holds no spaces or control characters");
    }
    match url::Url::parse(value) {
        Ok(_) => Ok(()),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            refuse("it is not an absolute URI: it has no scheme (https://…)")
        }
        Err(e) => refuse(&format!("it is not a URI: {e}")),
    }
}

/// The resources a request names, each checked, in the order sent, without repeats.
pub fn requested(params: &Params) -> Result<Vec<String>, Rejection> {
    let mut out: Vec<String> = Vec::new();
    for value in params.all(PARAMETER)? {
        check_indicator(value)?;
        if !out.iter().any(|r| r == value) {
            out.push(value.to_string());
        }
    }
    Ok(out)
}

/// The one resource a token request names, if any (several are refused).
pub fn requested_one(params: &Params) -> Result<Option<String>, Rejection> {
    let mut all = requested(params)?;
    match all.len() {
        0 | 1 => Ok(all.pop()),
        _ => Err(Rejection::new(Reason::ResourceOnePerToken).with("requested", all.join(" "))),
    }
}

/// Checks that the client is registered for every resource.
pub fn check_allowed(client: &Client, resources: &[String]) -> Result<(), Rejection> {
    match resources.iter().find(|r| !client.resources.contains(r)) {
        None => Ok(()),
        Some(r) => Err(Rejection::new(Reason::ResourceNotAllowed)
            .with("resource", r.clone())
            .with("client_id", client.id.clone())
            .with("allowed", list(&client.resources))),
    }
}

/// The resource a token is for, from what the token request names and what the grant covers
/// (RFC 8707 §2.2): the named one if the grant covers it; the grant's only one if none is named.
pub fn choose(named: Option<&str>, granted: &[String]) -> Result<Option<String>, Rejection> {
    match (named, granted) {
        (Some(r), _) if granted.iter().any(|g| g == r) => Ok(Some(r.to_string())),
        (Some(r), _) => Err(Rejection::new(Reason::ResourceNotGranted)
            .with("resource", r.to_string())
            .with("granted", list(granted))),
        (None, []) => Ok(None),
        (None, [only]) => Ok(Some(only.clone())),
        (None, several) => Err(Rejection::new(Reason::ResourceAmbiguous).with("granted", list(several))),
    }
}

/// The registered resource `id`, for `client`, which must still be registered for it.
pub async fn load(store: &dyn Store, client: &Client, id: &str) -> Result<Resource, Rejection> {
    check_allowed(client, &[id.to_string()])?;
    if let Some(resource) = store.resource(id).await.map_err(Rejection::store)? {
        return Ok(resource);
    }
    let mut r = Rejection::new(Reason::ResourceUnknown).with("resource", id.to_string());
    if let Ok(all) = store.list_resources().await
        && let Some((close, how)) = all.iter().find_map(|known| near_miss(&known.id, id).map(|how| (known, how)))
    {
        r = r.with("closest_registered", close.id.clone()).with("difference", how.as_str());
    }
    Err(r)
}

/// How `received` misses the registered indicator `known`, when it is one of the usual ways one
/// URI is written for another (a trailing `/`, http for https, case, a port, encoding), as the
/// redirect URI checks name them (`redirect_uri::difference`); `None` for another URI.
pub fn near_miss(known: &str, received: &str) -> Option<UriDifference> {
    if known == received {
        return None;
    }
    let how = crate::redirect_uri::difference(known, received);
    matches!(
        how,
        UriDifference::TrailingSlash
            | UriDifference::Scheme
            | UriDifference::HostCase
            | UriDifference::PathCase
            | UriDifference::Port
            | UriDifference::PercentEncoding
    )
    .then_some(how)
}

/// The scope of a token for `resource`: the granted scopes the resource understands.
pub fn token_scope(granted: &Scope, resource: &Resource) -> Scope {
    let understood = Scope::from_stored(&resource.scopes.join(" "));
    Scope::from_stored(&granted.iter().filter(|s| understood.contains(s)).collect::<Vec<_>>().join(" "))
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SigningAlg, TokenFormat};
    use crate::params::Encoding;

    #[test]
    fn indicators_must_be_absolute_uris_without_fragments() {
        for ok in ["https://api.example.com/", "https://api.example.com/orders?v=2", "urn:example:orders"] {
            assert!(check_indicator(ok).is_ok(), "{ok}");
        }
        for (bad, problem) in [
            ("api.example.com", "absolute"),
            ("/orders", "absolute"),
            ("orders-api", "absolute"),
            ("https://api.example.com/#x", "fragment"),
            ("https://api.example.com/ x", "spaces"),
        ] {
            let r = check_indicator(bad).unwrap_err();
            assert_eq!(r.reason, Reason::ResourceInvalid, "{bad}");
            assert!(r.facts.get("problem").unwrap().as_str().unwrap().contains(problem), "{bad}: {r:?}");
        }
    }

    #[test]
    fn a_token_request_names_one_resource_and_only_one_the_grant_covers() {
        let p = Params::from_urlencoded(b"resource=https%3A%2F%2Fa%2F&resource=https%3A%2F%2Fb%2F", Encoding::Form)
            .unwrap();
        assert_eq!(requested(&p).unwrap(), ["https://a/", "https://b/"]);
        assert_eq!(requested_one(&p).unwrap_err().reason, Reason::ResourceOnePerToken);
        let granted = ["https://a/".to_string(), "https://b/".to_string()];
        assert_eq!(choose(Some("https://b/"), &granted).unwrap().as_deref(), Some("https://b/"));
        assert_eq!(choose(Some("https://c/"), &granted).unwrap_err().reason, Reason::ResourceNotGranted);
        assert_eq!(choose(None, &granted).unwrap_err().reason, Reason::ResourceAmbiguous);
        assert_eq!(choose(None, &granted[..1]).unwrap().as_deref(), Some("https://a/"));
        assert_eq!(choose(None, &[]).unwrap(), None);
        let r = choose(Some("https://a/"), &[]).unwrap_err();
        assert_eq!((r.reason, r.facts.get("granted").unwrap().as_str()), (Reason::ResourceNotGranted, Some("none")));
    }

    #[test]
    fn near_misses_are_recognised_and_scopes_are_filtered_by_the_resource() {
        assert_eq!(
            near_miss("https://api.example.com/", "https://api.example.com"),
            Some(UriDifference::TrailingSlash)
        );
        assert_eq!(near_miss("https://api.example.com", "http://API.example.com"), Some(UriDifference::Scheme));
        assert!(near_miss("https://api.example.com", "https://api.example.com").is_none());
        assert!(near_miss("https://api.example.com", "https://api.example.org").is_none());
        let resource = Resource {
            id: "https://api/".into(),
            name: "API".into(),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            access_token_format: TokenFormat::Jwt,
            access_token_lifetime: None,
            signing_alg: SigningAlg::RS256,
            created_at: 0,
        };
        let granted = Scope::parse("openid orders:read profile").unwrap();
        assert_eq!(token_scope(&granted, &resource).to_string(), "orders:read");
    }
}

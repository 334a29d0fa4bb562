//! Token introspection (RFC 7662) and revocation (RFC 7009): what a presented token is, whether
//! it is active and why not, and what revoking it does.
//!
//! Candor's tokens carry their kind in a checksummed prefix, so the `token_type_hint` is never
//! needed to find a token: a hint that names the other kind is reported, not obeyed.

use crate::access_token::{self, Issuer};
use crate::clock::{UnixTime, rfc3339};
use crate::model::{AccessTokenRecord, Client, RefreshTokenRecord};
use crate::rejection::{Reason, Rejection};
use crate::store::Store;
use crate::tokens::{self, SecretKind, fingerprint, hash_secret};
use serde_json::{Map, Value, json};

/// The token kinds RFC 7009 §2.1 and RFC 7662 §2.1 name as `token_type_hint` values.
pub const HINTS: [&str; 2] = ["access_token", "refresh_token"];

/// A presented token, found in the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Access(AccessTokenRecord),
    Refresh(RefreshTokenRecord),
}

impl Found {
    pub fn kind(&self) -> &'static str {
        match self {
            Found::Access(_) => "access_token",
            Found::Refresh(_) => "refresh_token",
        }
    }

    pub fn client_id(&self) -> &str {
        match self {
            Found::Access(a) => &a.client_id,
            Found::Refresh(r) => &r.client_id,
        }
    }

    pub fn grant_id(&self) -> &str {
        match self {
            Found::Access(a) => &a.grant_id,
            Found::Refresh(r) => &r.grant_id,
        }
    }
}

/// Checks a `token_type_hint`: absent, or one of `HINTS` (RFC 7009 §2.2.1 answers any other
/// with `unsupported_token_type`).
pub fn check_hint(hint: Option<&str>) -> Result<(), Rejection> {
    match hint {
        Some(h) if !HINTS.contains(&h) => Err(Rejection::new(Reason::TokenTypeUnsupported)
            .with("token_type_hint", tokens::safe_identifier(h))
            .with("supported", HINTS.join(" "))),
        _ => Ok(()),
    }
}

/// Finds the token `value` is, whatever the hint says. A value that is no Candor token of either
/// kind is refused with the defect of the kind the hint names (access token by default).
pub async fn find(store: &dyn Store, issuer: Issuer<'_>, value: &str, hint: Option<&str>) -> Result<Found, Rejection> {
    if tokens::is_jwt_shaped(value) {
        return access_token::find(store, issuer, value).await.map(Found::Access);
    }
    if tokens::is_shaped_as(value, SecretKind::AccessToken) {
        return access_token::find_shaped(store, value).await.map(Found::Access);
    }
    if tokens::is_shaped_as(value, SecretKind::RefreshToken) {
        return store
            .refresh_token(&hash_secret(value))
            .await
            .map_err(Rejection::store)?
            .map(Found::Refresh)
            .ok_or_else(|| Rejection::new(Reason::RefreshTokenUnknown).with("token_fingerprint", fingerprint(value)));
    }
    let (kind, reason) = if hint == Some("refresh_token") {
        (SecretKind::RefreshToken, Reason::RefreshTokenMalformed)
    } else {
        (SecretKind::AccessToken, Reason::AccessTokenMalformed)
    };
    let defect = tokens::inspect(value, kind).err().unwrap_or(tokens::Defect::NotACandorValue);
    Err(Rejection::new(reason).with("defect", defect.code()).with("explanation", defect.explain(kind)))
}

/// Why a found token is not active at `now`, if it is not. The user behind it must still exist
/// and be enabled (the server looks the user up: `user_active`).
pub fn inactive(found: &Found, now: UnixTime) -> Option<Rejection> {
    match found {
        Found::Access(a) => {
            if let Some(at) = a.revoked_at {
                return Some(Rejection::new(Reason::AccessTokenRevoked).with("revoked_at", rfc3339(at)));
            }
            (now >= a.expires_at).then(|| {
                Rejection::new(Reason::AccessTokenExpired)
                    .with("expired_at", rfc3339(a.expires_at))
                    .with("server_time", rfc3339(now))
            })
        }
        Found::Refresh(r) => {
            if let Some(at) = r.revoked_at {
                return Some(Rejection::new(Reason::RefreshTokenRevoked).with("revoked_at", rfc3339(at)));
            }
            if let Some(at) = r.rotated_at {
                return Some(Rejection::new(Reason::RefreshTokenRotated).with("rotated_at", rfc3339(at)));
            }
            (now >= r.expires_at).then(|| {
                Rejection::new(Reason::RefreshTokenExpired)
                    .with("expired_at", rfc3339(r.expires_at))
                    .with("server_time", rfc3339(now))
            })
        }
    }
}

/// Whether `caller` may learn about `found` by introspection. Any confidential client may
/// introspect an access token (resource servers are registered as clients); a refresh token is
/// for the client it was issued to only.
pub fn may_introspect(caller: &Client, found: &Found) -> Result<(), Rejection> {
    match found {
        Found::Refresh(r) if r.client_id != caller.id => Err(Rejection::new(Reason::RefreshTokenIssuedToOtherClient)
            .with("client_id", caller.id.clone())
            .with_internal("issued_to", r.client_id.clone())),
        _ => Ok(()),
    }
}

/// The RFC 7662 §2.2 members of an active token's introspection response. `username` is the
/// user's login name, when the token has a user.
pub fn active_response(found: &Found, issuer: &str, username: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("active".into(), json!(true));
    let (scope, client_id, sub, iat, exp) = match found {
        Found::Access(a) => {
            // A client_credentials token has no user: its subject is the client (as RFC 9068 §2.2 says of JWT access tokens).
            (&a.scope, &a.client_id, a.user_id.as_deref().unwrap_or(&a.client_id), a.issued_at, a.expires_at)
        }
        Found::Refresh(r) => (&r.scope, &r.client_id, r.user_id.as_str(), r.issued_at, r.expires_at),
    };
    out.insert("scope".into(), json!(scope));
    out.insert("client_id".into(), json!(client_id));
    if let Some(u) = username {
        out.insert("username".into(), json!(u));
    }
    if let Found::Access(a) = found {
        match &a.dpop_jkt {
            // RFC 9449 §6.2: a bound token's confirmation, and its type.
            Some(jkt) => {
                out.insert("token_type".into(), json!(crate::dpop::TOKEN_TYPE));
                out.insert("cnf".into(), crate::dpop::confirmation(jkt));
            }
            None => {
                out.insert("token_type".into(), json!("Bearer"));
            }
        }
        // RFC 7662 §2.2 `aud`: the resource the token is for (RFC 8707); a token for no
        // resource is for this provider itself.
        out.insert("aud".into(), json!(a.audience.as_deref().unwrap_or(issuer)));
    }
    out.insert("exp".into(), json!(exp));
    out.insert("iat".into(), json!(iat));
    out.insert("sub".into(), json!(sub));
    out.insert("iss".into(), json!(issuer));
    // Not in RFC 7662's list, as several providers send it: which kind of token this is.
    out.insert("token_use".into(), json!(found.kind()));
    out
}

/// What a revocation did (RFC 7009 §2.2: answered 200 in every one of these cases).
#[derive(Debug, Clone, PartialEq)]
pub enum Revoked {
    /// An access token, now revoked (`false`: it already was, or had expired).
    AccessToken { newly: bool },
    /// A refresh token: its whole family (the grant's access and refresh tokens) is revoked;
    /// `tokens` counts the ones newly revoked.
    Family { grant_id: String, tokens: u64 },
}

/// Revokes what `found` names for `client` (RFC 7009 §2.1): only the client a token was issued to
/// may revoke it. A refresh token takes its whole family with it ("SHOULD also invalidate all
/// access tokens based on the same authorization grant"); an access token goes alone.
pub async fn revoke(store: &dyn Store, client: &Client, found: &Found, now: UnixTime) -> Result<Revoked, Rejection> {
    if found.client_id() != client.id {
        return Err(Rejection::new(Reason::TokenIssuedToOtherClient)
            .with("client_id", client.id.clone())
            .with("token_type", found.kind())
            .with_internal("issued_to", found.client_id().to_string()));
    }
    match found {
        Found::Access(a) => {
            let newly = a.revoked_at.is_none()
                && now < a.expires_at
                && store.revoke_access_token(&a.hash, now).await.map_err(Rejection::store)?;
            Ok(Revoked::AccessToken { newly })
        }
        Found::Refresh(r) => {
            let tokens = store.revoke_grant(&r.grant_id, now).await.map_err(Rejection::store)?;
            Ok(Revoked::Family { grant_id: r.grant_id.clone(), tokens })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(revoked_at: Option<i64>, expires_at: i64) -> Found {
        Found::Access(AccessTokenRecord {
            hash: "h".into(),
            grant_id: "g".into(),
            client_id: "svc".into(),
            user_id: None,
            scope: "api.read".into(),
            audience: None,
            format: crate::model::TokenFormat::Opaque,
            dpop_jkt: None,
            issued_at: 100,
            expires_at,
            revoked_at,
        })
    }

    #[test]
    fn hints_are_the_two_registered_kinds() {
        assert!(check_hint(None).is_ok());
        assert!(check_hint(Some("refresh_token")).is_ok());
        let r = check_hint(Some("id_token")).unwrap_err();
        assert_eq!(r.reason, Reason::TokenTypeUnsupported);
        assert_eq!(r.reason.error(), "unsupported_token_type");
    }

    #[test]
    fn an_access_token_is_inactive_when_revoked_or_expired_and_says_which() {
        assert_eq!(inactive(&access(None, 200), 150), None);
        assert_eq!(inactive(&access(None, 200), 200).unwrap().reason, Reason::AccessTokenExpired);
        assert_eq!(inactive(&access(Some(120), 200), 150).unwrap().reason, Reason::AccessTokenRevoked);
    }

    #[test]
    fn a_client_credentials_token_introspects_with_the_client_as_its_subject() {
        let out = active_response(&access(None, 200), "https://id.example.com", None);
        assert_eq!(out["sub"], "svc");
        assert_eq!(out["token_type"], "Bearer");
        assert_eq!(out["exp"], 200);
        assert!(!out.contains_key("username"));
    }
}

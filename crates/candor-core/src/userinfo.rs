//! The UserInfo endpoint's rules (OIDC Core §5.3) and bearer token validation (RFC 6750).

use crate::access_token::{self, Issuer};
use crate::clock::{UnixTime, rfc3339};
use crate::model::AccessTokenRecord;
use crate::rejection::{Reason, Rejection};
use crate::scope::{self, Scope};
use crate::store::Store;
use serde_json::{Map, Value, json};

/// Validates a bearer access token, opaque or JWT: shape, existence, expiry, revocation.
pub async fn validate_access_token(
    store: &dyn Store,
    issuer: Issuer<'_>,
    token: &str,
    now: UnixTime,
) -> Result<AccessTokenRecord, Rejection> {
    let record = access_token::find(store, issuer, token).await?;
    let grant_id = record.grant_id.clone();
    check_access_token(record, now).map_err(|r| r.with_internal("grant_id", grant_id))
}

fn check_access_token(record: AccessTokenRecord, now: UnixTime) -> Result<AccessTokenRecord, Rejection> {
    if let Some(at) = record.revoked_at {
        return Err(Rejection::new(Reason::AccessTokenRevoked).with("revoked_at", rfc3339(at)));
    }
    if now >= record.expires_at {
        return Err(Rejection::new(Reason::AccessTokenExpired)
            .with("expired_at", rfc3339(record.expires_at))
            .with("server_time", rfc3339(now)));
    }
    Ok(record)
}

/// Checks a token's DPoP binding (RFC 9449 §7): a bound token only with a proof by its key
/// (`proof_jkt`, from the DPoP scheme and header), an unbound one only as a Bearer token.
pub fn check_binding(record: &AccessTokenRecord, proof_jkt: Option<&str>) -> Result<(), Rejection> {
    match (&record.dpop_jkt, proof_jkt) {
        (Some(bound), None) => Err(Rejection::new(Reason::AccessTokenDpopBound).with("bound_to", bound.clone())),
        (Some(bound), Some(_)) => crate::dpop::check_binding(Some(bound), proof_jkt),
        (None, Some(key)) => Err(Rejection::new(Reason::DpopKeyMismatch)
            .with("bound_to", "none")
            .with("proof_key", key.to_string())
            .with("problem", "the token is not DPoP-bound: send it with the Bearer scheme")),
        (None, None) => Ok(()),
    }
}

/// The claims userinfo returns for a valid token carrying `openid`, issued for Candor itself
/// (a token for a resource is that resource's only, RFC 8707), presented with a proof by its key
/// if it is DPoP-bound (`proof_jkt`).
pub async fn claims(
    store: &dyn Store,
    issuer: Issuer<'_>,
    token: &str,
    proof_jkt: Option<&str>,
    now: UnixTime,
) -> Result<Value, Rejection> {
    let record = validate_access_token(store, issuer, token, now).await?;
    check_binding(&record, proof_jkt).map_err(|r| r.with_internal("grant_id", record.grant_id.clone()))?;
    if let Some(audience) = &record.audience {
        return Err(Rejection::new(Reason::AccessTokenAudienceMismatch)
            .with("audience", audience.clone())
            .with("endpoint", "userinfo")
            .with_internal("grant_id", record.grant_id.clone()));
    }
    let granted = Scope::from_stored(&record.scope);
    if !granted.contains(scope::OPENID) {
        return Err(Rejection::new(Reason::InsufficientScope).with("required", "openid").with("granted", record.scope));
    }
    let user_id = record.user_id.ok_or_else(|| {
        Rejection::new(Reason::InsufficientScope).with("problem", "a client_credentials token has no user")
    })?;
    let user =
        store.user(&user_id).await.map_err(Rejection::store)?.ok_or_else(|| Rejection::new(Reason::UserUnknown))?;
    if user.disabled {
        return Err(Rejection::new(Reason::UserDisabled));
    }
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    if granted.contains(scope::PROFILE) {
        out.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = &user.name {
            out.insert("name".into(), json!(name));
        }
    }
    if granted.contains(scope::EMAIL)
        && let Some(email) = &user.email
    {
        out.insert("email".into(), json!(email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    Ok(Value::Object(out))
}

//! ID tokens (OIDC Core §2, §3.1.3.6).

use crate::clock::UnixTime;
use crate::keys::{KeyRing, half_hash};
use crate::model::Client;
use crate::rejection::Rejection;
use crate::settings::Settings;
use serde_json::{Value, json};

pub struct IdTokenInput<'a> {
    pub client: &'a Client,
    pub user_id: &'a str,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    /// The session's public id (OIDC Back-Channel Logout 1.0 §2.1: the `sid` claim), if the
    /// tokens were issued in a browser session that has one.
    pub sid: Option<&'a str>,
    pub access_token: &'a str,
}

/// Builds and signs an ID token with the client's algorithm.
pub fn sign(keys: &KeyRing, settings: &Settings, input: &IdTokenInput<'_>, now: UnixTime) -> Result<String, Rejection> {
    let alg = input.client.id_token_alg;
    let key = keys.active(alg).map_err(|e| Rejection::internal().with_internal("keys", e.to_string()))?;
    let mut claims = json!({
        "iss": settings.issuer,
        "sub": input.user_id,
        "aud": input.client.id,
        "azp": input.client.id,
        "exp": now + settings.id_token_lifetime,
        "iat": now,
        "auth_time": input.auth_time,
        "at_hash": half_hash(alg, input.access_token),
    });
    if let Value::Object(m) = &mut claims {
        if let Some(nonce) = input.nonce {
            m.insert("nonce".into(), Value::String(nonce.to_string()));
        }
        if let Some(sid) = input.sid {
            m.insert("sid".into(), Value::String(sid.to_string()));
        }
    }
    key.sign_jwt(&claims).map_err(|e| Rejection::internal().with_internal("signing", e.to_string()))
}

//! Authenticating the client at the token endpoint (RFC 6749 §2.3, §3.2.1), and with a signed
//! JWT (private_key_jwt: OIDC Core §9, RFC 7523; the rules are in `client_assertion`).

use crate::client_assertion;
use crate::clock::UnixTime;
use crate::model::{AuthMethod, Client};
use crate::rejection::{Reason, Rejection};
use crate::store::ClientStore;
use crate::tokens::{hash_secret, hashes_equal};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The credentials a token request carried, before they are checked.
#[derive(Debug, Default, Clone)]
pub struct Presented {
    /// The raw value of the `Authorization` header, if it used the Basic scheme.
    pub basic: Option<String>,
    pub body_client_id: Option<String>,
    pub body_client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// What a client assertion is checked against, at the endpoint it was sent to. Borrowed and
/// cheap: only a request that carries an assertion builds its list of audiences.
#[derive(Debug, Clone, Copy)]
pub struct AssertionContext<'a> {
    pub issuer: &'a str,
    /// The endpoint the request was sent to, as a path (`/token`, `/introspect`…).
    pub path: &'a str,
    pub now: UnixTime,
    /// Seconds of clock difference tolerated.
    pub leeway: i64,
    /// Opens `client_secret_jwt` clients' secrets; `None`: the method is not offered.
    pub sealing: Option<&'a crate::sealed::SealingKey>,
}

impl AssertionContext<'_> {
    /// The audiences that identify Candor: the issuer, the token endpoint, the endpoint called.
    pub fn audiences(&self) -> Vec<String> {
        let base = self.issuer.trim_end_matches('/');
        let mut audiences = vec![self.issuer.to_string(), format!("{base}/token")];
        let called = format!("{base}{}", self.path);
        if !audiences.contains(&called) {
            audiences.push(called);
        }
        audiences
    }
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub fn decode_basic(credentials: &str) -> Result<(String, String), Rejection> {
    let malformed = |problem: &str| Rejection::new(Reason::BasicAuthMalformed).with("problem", problem.to_string());
    let bytes = STANDARD.decode(credentials.trim()).map_err(|_| malformed("the credentials are not valid base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| malformed("the decoded credentials are not UTF-8"))?;
    let (id, secret) =
        text.split_once(':').ok_or_else(|| malformed("the decoded credentials have no ':' between id and secret"))?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Ok((decode(id), decode(secret)))
}

/// Finds and authenticates the client. Returns the client and the method it used.
pub async fn authenticate(
    store: &dyn ClientStore,
    presented: &Presented,
    context: &AssertionContext<'_>,
) -> Result<(Client, AuthMethod), Rejection> {
    if presented.client_assertion.is_some() || presented.client_assertion_type.is_some() {
        return authenticate_assertion(store, presented, context).await;
    }
    let basic = presented.basic.as_deref().map(decode_basic).transpose()?;
    if basic.is_some() && presented.body_client_secret.is_some() {
        return Err(
            Rejection::new(Reason::MultipleAuthMethods).with("methods", "client_secret_basic client_secret_post")
        );
    }
    let (client_id, secret, method) = match (&basic, &presented.body_client_secret) {
        (Some((id, secret)), _) => {
            if let Some(body_id) = &presented.body_client_id
                && body_id != id
            {
                return Err(Rejection::new(Reason::ClientIdConflict)
                    .with("header_client_id", crate::tokens::safe_identifier(id))
                    .with("body_client_id", crate::tokens::safe_identifier(body_id)));
            }
            (id.clone(), Some(secret.clone()), AuthMethod::ClientSecretBasic)
        }
        (None, Some(secret)) => {
            let id = presented.body_client_id.clone().ok_or_else(|| {
                Rejection::missing("client_id").with("problem", "client_secret was sent without client_id")
            })?;
            (id, Some(secret.clone()), AuthMethod::ClientSecretPost)
        }
        (None, None) => {
            let id =
                presented.body_client_id.clone().ok_or_else(|| Rejection::new(Reason::ClientAuthenticationMissing))?;
            (id, None, AuthMethod::None)
        }
    };
    let client = find_client(store, &client_id).await?;
    if method != client.auth_method {
        return Err(Rejection::new(Reason::AuthMethodNotAllowed)
            .with("client_id", client.id.clone())
            .with("used", method.as_str())
            .with("registered", client.auth_method.as_str()));
    }
    if let (Some(secret), Some(stored)) = (secret, &client.secret_hash) {
        // Constant time over the hashes: the secret is 256 random bits, so a fast hash suffices.
        if !hashes_equal(&hash_secret(&secret), stored) {
            return Err(Rejection::new(Reason::ClientSecretWrong)
                .with("client_id", client.id.clone())
                .with("method", method.as_str()));
        }
    } else if method != AuthMethod::None {
        // A confidential method with no stored secret: misconfigured client; refuse.
        return Err(Rejection::new(Reason::ClientSecretWrong)
            .with("client_id", client.id.clone())
            .with("problem", "no secret is registered"));
    }
    Ok((client, method))
}

/// The registered client `client_id` names, or `client_authentication_failed_unknown_client`.
async fn find_client(store: &dyn ClientStore, client_id: &str) -> Result<Client, Rejection> {
    store.client(client_id).await.map_err(Rejection::store)?.ok_or_else(|| {
        let r = Rejection::new(Reason::ClientAuthenticationFailedUnknownClient)
            .with("client_id", crate::tokens::safe_identifier(client_id));
        if crate::tokens::looks_like_secret(client_id) {
            r.with("problem", "the client_id looks like a secret: are client id and secret swapped?")
        } else {
            r
        }
    })
}

/// private_key_jwt: the assertion names its client, is verified with that client's registered
/// keys, and is used once (its `jti` is recorded in the store, shared by every node).
async fn authenticate_assertion(
    store: &dyn ClientStore,
    presented: &Presented,
    context: &AssertionContext<'_>,
) -> Result<(Client, AuthMethod), Rejection> {
    if presented.basic.is_some() || presented.body_client_secret.is_some() {
        let other = if presented.basic.is_some() { "client_secret_basic" } else { "client_secret_post" };
        return Err(Rejection::new(Reason::MultipleAuthMethods).with("methods", format!("private_key_jwt {other}")));
    }
    let assertion = presented.client_assertion.as_deref().ok_or_else(|| {
        Rejection::missing("client_assertion").with("problem", "client_assertion_type was sent without the assertion")
    })?;
    let (parsed, claimed) = client_assertion::read(presented.client_assertion_type.as_deref(), assertion)?;
    if let Some(id) = &presented.body_client_id
        && *id != claimed
    {
        return Err(Rejection::new(Reason::ClientAssertionIssuerMismatch)
            .with("client_id", crate::tokens::safe_identifier(id))
            .with("sub", crate::tokens::safe_identifier(&claimed))
            .with("problem", "the client_id sent beside the assertion is not the one it names"));
    }
    let client = find_client(store, &claimed).await?;
    let no_keys = serde_json::json!({ "keys": [] });
    let secret;
    let keys = match client.auth_method {
        AuthMethod::PrivateKeyJwt => client_assertion::Keys::Public(client.jwks.as_ref().unwrap_or(&no_keys)),
        AuthMethod::ClientSecretJwt => {
            secret = open_secret(&client, context.sealing)?;
            client_assertion::Keys::Secret(secret.as_bytes())
        }
        registered => {
            let used =
                if parsed.alg().is_some_and(|a| a.starts_with("HS")) { "client_secret_jwt" } else { "private_key_jwt" };
            return Err(Rejection::new(Reason::AuthMethodNotAllowed)
                .with("client_id", client.id.clone())
                .with("used", used)
                .with("registered", registered.as_str()));
        }
    };
    let audiences = context.audiences();
    let expect = client_assertion::Expect { keys, audiences: &audiences, now: context.now, leeway: context.leeway };
    let verified = client_assertion::verify(&parsed, &client.id, &expect)?;
    if !store.use_client_assertion(&client.id, &verified.jti, verified.expires_at).await.map_err(Rejection::store)? {
        return Err(client_assertion::replayed(&verified).with("client_id", client.id.clone()));
    }
    let method = client.auth_method;
    Ok((client, method))
}

/// A `client_secret_jwt` client's secret, unsealed with this server's key.
fn open_secret(client: &Client, sealing: Option<&crate::sealed::SealingKey>) -> Result<String, Rejection> {
    let unreadable = |problem: String| {
        Rejection::new(Reason::ClientSecretUnreadable).with("client_id", client.id.clone()).with("problem", problem)
    };
    let Some(key) = sealing else {
        return Err(unreadable("this server has no [client_assertion] secret_key to open it with".into()));
    };
    let Some(sealed) = &client.secret_sealed else {
        return Err(unreadable(
            "no sealed secret is registered for the client (registered without a secret_key?)".into(),
        ));
    };
    key.open(&client.id, sealed).map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        let header = STANDARD.encode("my%3Aapp:s%2Bcret");
        assert_eq!(decode_basic(&header).unwrap(), ("my:app".into(), "s+cret".into()));
        assert_eq!(decode_basic("!!!").unwrap_err().reason, Reason::BasicAuthMalformed);
        assert_eq!(decode_basic(&STANDARD.encode("nocolon")).unwrap_err().reason, Reason::BasicAuthMalformed);
    }
}

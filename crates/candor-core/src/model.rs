//! The records Candor keeps: clients, users, codes, tokens, sessions, interactions, keys.

use crate::clock::UnixTime;
use crate::pkce::CodeChallenge;
use serde::{Deserialize, Serialize};

/// The grants a client may be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// The device authorization grant (RFC 8628): a device without a browser shows a user code
    /// that the user enters on another device.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 4] =
        [GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials, GrantType::DeviceCode];

    /// The `grant_type` value of the token request (RFC 8628 §3.4: a URN for the device grant).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// A short name for command lines and listings (the URN's last part for the device grant).
    pub fn short_name(self) -> &'static str {
        match self {
            GrantType::DeviceCode => "device_code",
            other => other.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How a client authenticates at the token endpoint (OIDC Registration `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with the client's private key (OIDC Core §9, RFC 7523); the client's public
    /// keys are registered with it (`Client::jwks`).
    PrivateKeyJwt,
    /// A JWT signed with an HMAC keyed by the client's secret (OIDC Core §9, RFC 7523); the
    /// secret is kept sealed (`Client::secret_sealed`), available only with a sealing key.
    ClientSecretJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::ClientSecretJwt,
        AuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::None => "none",
        }
    }

    /// The method authenticates with a client secret Candor generates.
    pub fn uses_secret(self) -> bool {
        matches!(self, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost | AuthMethod::ClientSecretJwt)
    }

    pub fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The JWS algorithms Candor signs ID tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<SigningAlg> {
        SigningAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// How an access token is issued: an opaque Candor value (`cda_…`), or a signed JWT (RFC 9068)
/// that a resource server can verify on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    #[default]
    Opaque,
    Jwt,
}

impl TokenFormat {
    pub const ALL: [TokenFormat; 2] = [TokenFormat::Opaque, TokenFormat::Jwt];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Opaque => "opaque",
            TokenFormat::Jwt => "jwt",
        }
    }

    pub fn parse(s: &str) -> Option<TokenFormat> {
        TokenFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A protected resource (an API) that access tokens can be issued for (RFC 8707): its resource
/// indicator, the scopes it understands, and how its tokens are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// The resource indicator: an absolute URI without a fragment (RFC 8707 §2). It is the
    /// `aud` of the tokens issued for the resource.
    pub id: String,
    pub name: String,
    /// The scopes this resource understands: a token for it carries the granted scopes among
    /// these, and no other.
    pub scopes: Vec<String>,
    pub access_token_format: TokenFormat,
    /// Lifetime of its access tokens in seconds; `None`: the provider's setting.
    pub access_token_lifetime: Option<i64>,
    /// The algorithm its JWT access tokens are signed with (RFC 9068 §2.1: RS256 by default).
    pub signing_alg: SigningAlg,
    pub created_at: UnixTime,
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// Hash of the client secret (see `tokens::hash_secret`); `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// PKCE required for this client (always true for public clients).
    pub require_pkce: bool,
    /// Accept `code_challenge_method=plain` (off by default; RFC 9700 §2.1.1 recommends S256).
    pub allow_plain_pkce: bool,
    pub id_token_alg: SigningAlg,
    /// Issue a refresh token with every code exchange even without `offline_access`.
    pub always_issue_refresh_token: bool,
    pub created_at: UnixTime,
    /// The public keys of a `private_key_jwt` client (a JWK Set); `None` for the others.
    pub jwks: Option<serde_json::Value>,
    /// Authorization requests must be pushed first (RFC 9126 §5,
    /// `require_pushed_authorization_requests`).
    pub require_par: bool,
    /// The format of the client's access tokens that are for no resource (a resource's own
    /// format wins for tokens issued for it).
    pub access_token_format: TokenFormat,
    /// The resource indicators (RFC 8707) this client may request tokens for.
    pub resources: Vec<String>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2, `dpop_bound_access_tokens`).
    pub require_dpop: bool,
    /// How the client takes part in logout (absent from clients serialised before it existed).
    #[serde(default)]
    pub logout: ClientLogout,
    /// Hash of the registration access token (RFC 7592) of a client registered at the
    /// registration endpoint; `None` for clients registered by an administrator.
    #[serde(default)]
    pub registration_token_hash: Option<String>,
    /// A `client_secret_jwt` client's secret, sealed (`sealed::SealingKey`); `None` for others.
    #[serde(default)]
    pub secret_sealed: Option<String>,
}

/// A client's logout registration (OIDC RP-Initiated Logout 1.0 §3.1, Back-Channel Logout 1.0 §2.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientLogout {
    /// Where the browser may be sent after a logout the client started
    /// (`post_logout_redirect_uris`); matched exactly, like redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where Candor posts a logout token when a session the client signed in to ends
    /// (`backchannel_logout_uri`).
    pub backchannel_uri: Option<String>,
    /// The logout token must carry the session's `sid` (`backchannel_logout_session_required`).
    pub backchannel_session_required: bool,
}

/// A pushed authorization request (RFC 9126): its parameters, kept until used once or expired.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedRequest {
    /// Hash of the `request_uri`'s secret value.
    pub hash: String,
    pub client_id: String,
    /// The request's parameters, form-encoded, client authentication removed.
    pub params: String,
    pub expires_at: UnixTime,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn may_use(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn pkce_required(&self) -> bool {
        self.require_pkce || self.is_public()
    }
}

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The stable subject identifier (`sub`).
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: UnixTime,
}

/// An issued authorization code. After redemption or expiry it stays as a tombstone so a later
/// presentation can be diagnosed precisely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub hash: String,
    /// Every token issued from this code carries this grant id, so they can be revoked together.
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The redirect URI the code was delivered to.
    pub redirect_uri: String,
    /// Whether `/authorize` received `redirect_uri` explicitly (then /token must repeat it).
    pub redirect_uri_sent: bool,
    pub scope: String,
    /// The resources (RFC 8707) the authorization request named; the code's tokens are for
    /// these only.
    pub resources: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
    /// The DPoP key the code is bound to (RFC 9449 §10, `dpop_jkt` at /authorize).
    pub dpop_jkt: Option<String>,
    /// The session the code was issued in (its public `sid`), if the session has one.
    pub sid: Option<String>,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub redeemed_at: Option<UnixTime>,
    pub redeemed_trace: Option<String>,
    /// Trace id of the /authorize request that issued the code.
    pub issued_trace: String,
    /// When the session it was issued in was logged out of, before the code was redeemed: it
    /// can no longer be.
    pub session_ended_at: Option<UnixTime>,
}

/// Where a device authorization (RFC 8628) stands: waiting for the user, or decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceStatus> {
        [DeviceStatus::Pending, DeviceStatus::Approved, DeviceStatus::Denied].into_iter().find(|d| d.as_str() == s)
    }
}

/// A device authorization (RFC 8628 §3.2): the device code the client polls with, the user code
/// the user enters, and the user's decision. Like a code, it stays as a tombstone after use or
/// expiry so a late poll is diagnosed precisely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCodeRecord {
    /// Hash of the device code.
    pub hash: String,
    /// Hash of the user code, normalised (`device::UserCode`).
    pub user_code_hash: String,
    /// The grant the tokens will belong to.
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    /// The resources (RFC 8707) the device asked for.
    pub resources: Vec<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Seconds the client must wait between polls; raised by 5 at each `slow_down` (RFC 8628 §3.5).
    pub poll_interval: i64,
    pub last_polled_at: Option<UnixTime>,
    pub status: DeviceStatus,
    /// The user who approved or denied, and when they logged in.
    pub user_id: Option<String>,
    pub auth_time: Option<UnixTime>,
    pub decided_at: Option<UnixTime>,
    pub decided_trace: Option<String>,
    /// When the approved authorization was exchanged for tokens (once).
    pub redeemed_at: Option<UnixTime>,
    pub redeemed_trace: Option<String>,
    /// Trace id of the device authorization request.
    pub issued_trace: String,
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    pub hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    /// The resource the token is for (its `aud`, RFC 8707); `None`: Candor itself (userinfo).
    pub audience: Option<String>,
    /// The token is a JWT (RFC 9068); its hash is then `tokens::jwt_key` of it.
    pub format: TokenFormat,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 `cnf.jkt`).
    pub dpop_jkt: Option<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// An issued refresh token. All refresh tokens of one grant form a family (`grant_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    pub hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// RFC 6749 §6: the scope of the grant; a rotated token keeps it.
    pub scope: String,
    /// The resources of the grant (RFC 8707 §2.2): a refresh may ask for a token for any of them.
    pub resources: Vec<String>,
    /// The DPoP key the family is bound to (RFC 9449 §5: a public client's refresh tokens).
    pub dpop_jkt: Option<String>,
    /// The browser session the grant was made in, if any: the family's ID tokens carry it, and
    /// it ends with the session unless it is `offline_access`.
    pub sid: Option<String>,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    /// Absolute end of the family: rotation does not extend it.
    pub expires_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
    pub rotated_trace: Option<String>,
    pub revoked_at: Option<UnixTime>,
    pub issued_trace: String,
}

/// What one successful token request stores: everything its response will carry.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedTokens {
    pub access: AccessTokenRecord,
    pub refresh: Option<RefreshTokenRecord>,
    /// The request's audit record, committed with the tokens (one transaction per response).
    pub audit: Option<crate::audit::AuditRecord>,
}

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub hash: String,
    /// The session's public id: the `sid` claim of its ID tokens and logout tokens (OIDC
    /// Back-Channel Logout 1.0 §2.1). `None` for sessions made before Candor had it.
    pub sid: Option<String>,
    pub user_id: String,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An authorization request waiting for the user to log in or consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionRecord {
    pub hash: String,
    /// The validated authorization request, serialised.
    pub request: serde_json::Value,
    /// Hash of the cookie that binds the interaction to the browser that started it.
    pub browser_hash: String,
    /// Hash of the CSRF token its forms carry.
    pub csrf_hash: String,
    /// Set once the user logged in during this interaction.
    pub login_user_id: Option<String>,
    pub login_time: Option<UnixTime>,
    /// The `sid` of the session of that login.
    pub login_sid: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A signing key, with its private part (PKCS#8 DER).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_der: Vec<u8>,
    pub created_at: UnixTime,
    /// When a newer key replaced this one; it stays published until its tokens expire.
    pub retired_at: Option<UnixTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

//! Rows to records, once for every driver: sqlx's SQLite and PostgreSQL rows and rusqlite's rows
//! (the SQLite writer and readers) all read their columns through `Col`.

use crate::{corrupt, unavailable};
use candor_core::model::*;
use candor_core::pkce::{ChallengeMethod, CodeChallenge};
use candor_core::store::{StoreError, StoreResult};

/// A row's columns, by name.
pub(crate) trait Col {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, name: &str) -> StoreResult<bool>;
}

macro_rules! sqlx_col {
    ($Row:ty) => {
        impl Col for $Row {
            fn text(&self, name: &str) -> StoreResult<String> {
                sqlx::Row::try_get(self, name).map_err(unavailable)
            }
            fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
                sqlx::Row::try_get(self, name).map_err(unavailable)
            }
            fn int(&self, name: &str) -> StoreResult<i64> {
                sqlx::Row::try_get(self, name).map_err(unavailable)
            }
            fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
                sqlx::Row::try_get(self, name).map_err(unavailable)
            }
            fn flag(&self, name: &str) -> StoreResult<bool> {
                sqlx::Row::try_get(self, name).map_err(unavailable)
            }
        }
    };
}

sqlx_col!(sqlx::sqlite::SqliteRow);
sqlx_col!(sqlx::postgres::PgRow);

impl Col for rusqlite::Row<'_> {
    fn text(&self, name: &str) -> StoreResult<String> {
        self.get(name).map_err(column_error)
    }
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        self.get(name).map_err(column_error)
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        self.get(name).map_err(column_error)
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.get(name).map_err(column_error)
    }
    fn flag(&self, name: &str) -> StoreResult<bool> {
        self.get(name).map_err(column_error)
    }
}

fn column_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(crate::native::failure(&e))
}

fn json_list<T: serde::de::DeserializeOwned>(row: &(impl Col + ?Sized), col: &str) -> StoreResult<Vec<T>> {
    serde_json::from_str(&row.text(col)?).map_err(|e| corrupt(col, e))
}

pub(crate) fn client(row: &(impl Col + ?Sized)) -> StoreResult<Client> {
    let method = row.text("auth_method")?;
    let alg = row.text("id_token_alg")?;
    Ok(Client {
        id: row.text("id")?,
        name: row.text("name")?,
        secret_hash: row.opt_text("secret_hash")?,
        redirect_uris: json_list(row, "redirect_uris")?,
        grant_types: json_list(row, "grant_types")?,
        auth_method: AuthMethod::parse(&method).ok_or_else(|| corrupt("auth_method", &method))?,
        scopes: json_list(row, "scopes")?,
        require_pkce: row.flag("require_pkce")?,
        allow_plain_pkce: row.flag("allow_plain_pkce")?,
        id_token_alg: SigningAlg::parse(&alg).ok_or_else(|| corrupt("id_token_alg", &alg))?,
        always_issue_refresh_token: row.flag("always_issue_refresh_token")?,
        created_at: row.int("created_at")?,
        require_par: row.flag("require_par")?,
        access_token_format: token_format(row, "access_token_format")?,
        resources: json_list(row, "resources")?,
        require_dpop: row.flag("require_dpop")?,
        logout: ClientLogout {
            post_logout_redirect_uris: json_list(row, "post_logout_redirect_uris")?,
            backchannel_uri: row.opt_text("backchannel_logout_uri")?,
            backchannel_session_required: row.flag("backchannel_logout_session_required")?,
        },
        registration_token_hash: row.opt_text("registration_token_hash")?,
        secret_sealed: row.opt_text("secret_sealed")?,
        jwks: match row.opt_text("jwks")? {
            None => None,
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt("jwks", e))?),
        },
    })
}

fn token_format(row: &(impl Col + ?Sized), col: &str) -> StoreResult<TokenFormat> {
    let text = row.text(col)?;
    TokenFormat::parse(&text).ok_or_else(|| corrupt(col, &text))
}

pub(crate) fn resource(row: &(impl Col + ?Sized)) -> StoreResult<Resource> {
    let alg = row.text("signing_alg")?;
    Ok(Resource {
        id: row.text("id")?,
        name: row.text("name")?,
        scopes: json_list(row, "scopes")?,
        access_token_format: token_format(row, "access_token_format")?,
        access_token_lifetime: row.opt_int("access_token_lifetime")?,
        signing_alg: SigningAlg::parse(&alg).ok_or_else(|| corrupt("signing_alg", &alg))?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn user(row: &(impl Col + ?Sized)) -> StoreResult<User> {
    Ok(User {
        id: row.text("id")?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        name: row.opt_text("name")?,
        email: row.opt_text("email")?,
        email_verified: row.flag("email_verified")?,
        disabled: row.flag("disabled")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn code(row: &(impl Col + ?Sized)) -> StoreResult<CodeRecord> {
    let challenge = row.opt_text("code_challenge")?;
    let method = row.opt_text("code_challenge_method")?;
    let code_challenge = match (challenge, method.as_deref()) {
        (Some(value), Some("S256")) => Some(CodeChallenge { value, method: ChallengeMethod::S256 }),
        (Some(value), Some("plain")) => Some(CodeChallenge { value, method: ChallengeMethod::Plain }),
        (None, _) => None,
        (Some(_), other) => return Err(corrupt("code_challenge_method", format!("{other:?}"))),
    };
    Ok(CodeRecord {
        hash: row.text("hash")?,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        redirect_uri: row.text("redirect_uri")?,
        redirect_uri_sent: row.flag("redirect_uri_sent")?,
        scope: row.text("scope")?,
        resources: json_list(row, "resources")?,
        nonce: row.opt_text("nonce")?,
        code_challenge,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        sid: row.opt_text("sid")?,
        auth_time: row.int("auth_time")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        redeemed_at: row.opt_int("redeemed_at")?,
        redeemed_trace: row.opt_text("redeemed_trace")?,
        issued_trace: row.text("issued_trace")?,
        session_ended_at: row.opt_int("session_ended_at")?,
    })
}

pub(crate) fn device_code(row: &(impl Col + ?Sized)) -> StoreResult<DeviceCodeRecord> {
    let status = row.text("status")?;
    Ok(DeviceCodeRecord {
        hash: row.text("hash")?,
        user_code_hash: row.text("user_code_hash")?,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        scope: row.text("scope")?,
        resources: json_list(row, "resources")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        poll_interval: row.int("poll_interval")?,
        last_polled_at: row.opt_int("last_polled_at")?,
        status: DeviceStatus::parse(&status).ok_or_else(|| corrupt("device code status", &status))?,
        user_id: row.opt_text("user_id")?,
        auth_time: row.opt_int("auth_time")?,
        decided_at: row.opt_int("decided_at")?,
        decided_trace: row.opt_text("decided_trace")?,
        redeemed_at: row.opt_int("redeemed_at")?,
        redeemed_trace: row.opt_text("redeemed_trace")?,
        issued_trace: row.text("issued_trace")?,
    })
}

pub(crate) fn access(row: &(impl Col + ?Sized)) -> StoreResult<AccessTokenRecord> {
    Ok(AccessTokenRecord {
        hash: row.text("hash")?,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        user_id: row.opt_text("user_id")?,
        scope: row.text("scope")?,
        audience: row.opt_text("audience")?,
        format: token_format(row, "format")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        revoked_at: row.opt_int("revoked_at")?,
    })
}

pub(crate) fn refresh(row: &(impl Col + ?Sized)) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        hash: row.text("hash")?,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        scope: row.text("scope")?,
        resources: json_list(row, "resources")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        sid: row.opt_text("sid")?,
        auth_time: row.int("auth_time")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        rotated_at: row.opt_int("rotated_at")?,
        rotated_trace: row.opt_text("rotated_trace")?,
        revoked_at: row.opt_int("revoked_at")?,
        issued_trace: row.text("issued_trace")?,
    })
}

pub(crate) fn session(row: &(impl Col + ?Sized)) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        hash: row.text("hash")?,
        sid: row.opt_text("sid")?,
        user_id: row.text("user_id")?,
        auth_time: row.int("auth_time")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
    })
}

pub(crate) fn pushed(row: &(impl Col + ?Sized)) -> StoreResult<PushedRequest> {
    Ok(PushedRequest {
        hash: row.text("hash")?,
        client_id: row.text("client_id")?,
        params: row.text("params")?,
        expires_at: row.int("expires_at")?,
    })
}

pub(crate) fn interaction(row: &(impl Col + ?Sized)) -> StoreResult<InteractionRecord> {
    let request = row.text("request")?;
    Ok(InteractionRecord {
        hash: row.text("hash")?,
        request: serde_json::from_str(&request).map_err(|e| corrupt("interaction request", e))?,
        browser_hash: row.text("browser_hash")?,
        csrf_hash: row.text("csrf_hash")?,
        login_user_id: row.opt_text("login_user_id")?,
        login_time: row.opt_int("login_time")?,
        login_sid: row.opt_text("login_sid")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
    })
}

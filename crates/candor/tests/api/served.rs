//! `candor serve` as a separate process, for the tests that must kill it or change what is under
//! it: a store seeded by the admin commands, the process started and waited for, and a client
//! that logs in through the real pages and calls the token endpoint.

use crate::helpers::{Callback, csrf_of, location, pkce};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REDIRECT: &str = "https://app.example.com/callback";
pub const PASSWORD: &str = "served-test password";

pub fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

pub fn admin(args: &[&str], config: &Path) -> String {
    let out = candor().args(args).arg("--config").arg(config).env("CANDOR_NEW_PASSWORD", PASSWORD).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `config` for a server at `base` on `store`, migrates the store and adds the client
/// `web` (code and refresh grants, `openid offline_access`) and the user `alice`. Returns the
/// client's secret.
pub fn seed(config: &Path, base: &str, port: u16, store: &str) -> String {
    std::fs::write(config, format!("issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\nstore = \"{store}\"\n"))
        .unwrap();
    admin(&["migrate"], config);
    let added = admin(
        &[
            "client",
            "add",
            "--id",
            "web",
            "--name",
            "web",
            "--redirect-uri",
            REDIRECT,
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
        ],
        config,
    );
    let secret = added.lines().find_map(|l| l.trim().strip_prefix("client_secret:")).unwrap().trim().to_string();
    admin(&["user", "add", "alice"], config);
    secret
}

/// `candor serve --config config`, its output discarded, once it answers discovery.
pub async fn start(config: &Path, base: &str) -> Child {
    let mut serve = candor();
    serve.args(["serve", "--config"]).arg(config).stdout(Stdio::null()).stderr(Stdio::null());
    start_command(serve, base).await
}

/// Spawns `command` and waits until a server answers discovery at `base`.
pub async fn start_command(mut command: Command, base: &str) -> Child {
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/.well-known/openid-configuration")).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited before it answered: {status}");
        }
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// The client `web` of `seed` at a served Candor.
pub struct Load {
    pub base: String,
    pub secret: String,
}

impl Load {
    pub async fn token(&self, form: &[(&str, &str)]) -> Result<(StatusCode, Value), reqwest::Error> {
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.base))
            .basic_auth("web", Some(&self.secret))
            .form(form)
            .send()
            .await?;
        let status = r.status();
        Ok((status, r.json().await?))
    }

    pub async fn rotate(&self, refresh: &str) -> Result<(StatusCode, Value), reqwest::Error> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<(StatusCode, Value), reqwest::Error> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        self.token(&form).await
    }

    /// Authorize, log in, consent: a code and its verifier, or an error once the server is gone.
    pub async fn code(&self) -> Result<(String, String), reqwest::Error> {
        let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build()?;
        let p = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid offline_access"),
            ("state", "s"),
            ("code_challenge", p.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ];
        let mut r = b.get(format!("{}/authorize", self.base)).query(&params).send().await?;
        for _ in 0..6 {
            if r.status().is_redirection() {
                let to = location(&r);
                if !to.starts_with('/') {
                    return Ok((Callback::parse(&to).code(), p.verifier));
                }
                r = b.get(format!("{}{to}", self.base)).send().await?;
                continue;
            }
            let status = r.status();
            let page = r.text().await?;
            let Some(action) = page.split(r#"action=""#).nth(1).and_then(|a| a.split('"').next()) else {
                panic!("{status}, a page with no form: {page}")
            };
            let action = action.to_string();
            let csrf = csrf_of(&page);
            let form: Vec<(&str, &str)> = if action.ends_with("/login") {
                vec![("csrf", &csrf), ("username", "alice"), ("password", PASSWORD)]
            } else {
                vec![("csrf", &csrf), ("decision", "allow")]
            };
            r = b.post(format!("{}{action}", self.base)).form(&form).send().await?;
        }
        panic!("no code after six steps")
    }
}

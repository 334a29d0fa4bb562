//! Starts a cluster: a scratch PostgreSQL schema, `candor migrate`, seeded clients and user,
//! and N `candor serve` processes sharing one issuer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use candor_store::scratch::{PgScratch, test_database_url};
use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";
pub const CLIENT: &str = "web";
pub const REDIRECT: &str = "https://app.example.com/callback";

pub struct Node {
    pub base: String,
    child: Child,
    _config: tempfile::NamedTempFile,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub issuer: String,
    pub store_url: String,
    pub secret: String,
    _scratch: PgScratch,
}

pub fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

fn run(args: &[&str]) -> String {
    let out = candor().args(args).output().unwrap();
    assert!(out.status.success(), "candor {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn secret_of(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("client_secret:"))
        .unwrap_or_else(|| panic!("no secret in {output}"))
        .trim()
        .to_string()
}

impl Cluster {
    /// `extra` is appended to every node's candor.toml (e.g. `[lifetimes]` settings).
    pub async fn start(n: usize, extra: &str) -> Cluster {
        let base = test_database_url().unwrap().expect("CANDOR_TEST_POSTGRES_URL");
        let scratch = PgScratch::create(&base).await.unwrap();
        let url = scratch.url.clone();
        run(&["migrate", "--store", &url]);
        let secret = secret_of(&run(&[
            "client",
            "add",
            "--store",
            &url,
            "--name",
            "Web",
            "--id",
            CLIENT,
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--scope",
            "offline_access",
        ]));
        let out = candor()
            .args(["user", "add", USER, "--store", &url])
            .env("CANDOR_NEW_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let issuer = format!("http://127.0.0.1:{}", ports[0]);
        let mut nodes = Vec::new();
        // One after the other: the first start generates the signing keys, the others load them.
        for port in ports {
            let config = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(
                config.path(),
                format!(
                    "issuer = \"{issuer}\"\nlisten = \"127.0.0.1:{port}\"\nstore = \"{url}\"\n{extra}\n[log]\nlevel = \"warn\"\n"
                ),
            )
            .unwrap();
            let child = candor()
                .args(["serve", "--config"])
                .arg(config.path())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let node = Node { base: format!("http://127.0.0.1:{port}"), child, _config: config };
            wait_ready(&node.base).await;
            nodes.push(node);
        }
        Cluster { nodes, issuer, store_url: url, secret, _scratch: scratch }
    }
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("{base}/.well-known/openid-configuration");
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} did not start within 20 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A browser: cookies (which RFC 6265 does not separate by port, so all nodes share them), no redirects followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(16).build().unwrap()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce(n: usize) -> Pkce {
    let verifier = format!("multi-node-verifier-{n:08}-{}", "x".repeat(32));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    Pkce { challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()), verifier }
}

pub fn auth_query(p: &Pkce) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", CLIENT.into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid offline_access".into()),
        ("state", "s".into()),
        ("nonce", "n".into()),
        ("code_challenge", p.challenge.clone()),
        ("code_challenge_method", "S256".into()),
    ]
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").unwrap_or_else(|| panic!("no Location; status {}", r.status())).to_str().unwrap().into()
}

pub fn csrf_and_action(page: &str) -> (String, String) {
    let field = r#"name="csrf" value=""#;
    let csrf = page[page.find(field).expect("a csrf field") + field.len()..].split('"').next().unwrap().to_string();
    let action = page.split(r#"action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    (csrf, action)
}

pub fn code_of(callback: &str) -> String {
    let url = url::Url::parse(callback).unwrap();
    url.query_pairs().find(|(k, _)| k == "code").unwrap_or_else(|| panic!("no code in {callback}")).1.into_owned()
}

impl Cluster {
    pub async fn token(&self, node: usize, form: &[(&str, &str)], http: &reqwest::Client) -> (StatusCode, Value) {
        let r = http
            .post(format!("{}/token", self.nodes[node].base))
            .basic_auth(CLIENT, Some(&self.secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn exchange(
        &self,
        node: usize,
        code: &str,
        verifier: &str,
        http: &reqwest::Client,
    ) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        self.token(node, &form, http).await
    }

    /// With the browser's session and consent in place: an authorization on `node` straight to a code.
    pub async fn quick_code(&self, node: usize, b: &reqwest::Client, p: &Pkce) -> String {
        let r = b.get(format!("{}/authorize", self.nodes[node].base)).query(&auth_query(p)).send().await.unwrap();
        assert!(r.status().is_redirection(), "a remembered session and consent redirect at once: {}", r.status());
        code_of(&location(&r))
    }
}

pub fn reason(body: &Value) -> &str {
    body["reason"].as_str().unwrap_or("")
}

//! The `candor` binary: dev mode, admin commands and config errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

/// Starts `candor dev --port 0 --ephemeral` in `dir` and returns it with its banner's lines.
fn start_dev(dir: &std::path::Path) -> (std::process::Child, Vec<String>) {
    let mut child = candor()
        .args(["dev", "--port", "0", "--ephemeral"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = l.trim().ends_with("/admin/rejections");
        lines.push(l);
        if done {
            break;
        }
    }
    (child, lines)
}

fn run(args: &[&str], store: &str) -> (bool, String, String) {
    let out = candor().args(args).arg("--store").arg(store).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dev_mode_starts_with_no_setup_and_prints_what_a_developer_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = start_dev(dir.path());
    let text = lines.join("\n");
    let issuer =
        lines.iter().find_map(|l| l.trim().strip_prefix("issuer:")).expect("issuer printed").trim().to_string();
    assert!(text.contains("password:") && text.contains("demo-app") && text.contains("demo-cli"), "{text}");
    assert!(text.contains("code_challenge_method=S256") && text.contains("curl"), "{text}");
    let doc: serde_json::Value =
        reqwest::get(format!("{issuer}/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], issuer);
    // The printed secret works for client_credentials.
    let secret = lines.iter().find_map(|l| l.trim().strip_prefix("secret:")).unwrap().trim().to_string();
    let r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("demo-app", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!dir.path().join(".candor").exists(), "--ephemeral writes nothing");
}

#[test]
fn a_private_key_jwt_client_is_registered_with_its_public_keys_and_gets_no_secret() {
    use candor_core::keys::{SigningKey, generate};
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/admin.db", dir.path().display());
    let key = SigningKey::parse(&generate(candor_core::model::SigningAlg::ES256, 0).unwrap()).unwrap();
    let public = dir.path().join("public.json");
    std::fs::write(&public, serde_json::json!({ "keys": [key.public_jwk()] }).to_string()).unwrap();
    let add = |extra: &[&str]| {
        let mut args = vec!["client", "add", "--name", "Signed", "--grant", "client_credentials"];
        args.extend_from_slice(extra);
        run(&args, &store)
    };
    let (ok, out, err) =
        add(&["--id", "signed", "--auth-method", "private_key_jwt", "--jwks", public.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(!out.contains("client_secret"), "a private_key_jwt client has no secret: {out}");
    assert!(run(&["client", "show", "signed"], &store).1.contains("private_key_jwt"));
    // --require-par is registered and shown.
    let (ok, _, err) = run(
        &[
            "client",
            "add",
            "--name",
            "Pushed",
            "--id",
            "pushed",
            "--redirect-uri",
            "https://p.example/cb",
            "--require-par",
        ],
        &store,
    );
    assert!(ok, "{err}");
    assert!(run(&["client", "show", "pushed"], &store).1.contains("PAR:              required"));
    // --require-dpop is registered and shown.
    let (ok, out, err) = add(&["--id", "bound", "--require-dpop"]);
    assert!(ok && out.contains("DPoP:             required"), "{out}{err}");
    // Without keys, with private key material, or keys for another method: refused, saying why.
    let (ok, _, err) = add(&["--id", "a", "--auth-method", "private_key_jwt"]);
    assert!(!ok && err.contains("--jwks"), "{err}");
    let mut private = key.public_jwk();
    private["d"] = serde_json::json!("c2VjcmV0");
    let leaked = dir.path().join("private.json");
    std::fs::write(&leaked, serde_json::json!({ "keys": [private] }).to_string()).unwrap();
    let (ok, _, err) = add(&["--id", "b", "--auth-method", "private_key_jwt", "--jwks", leaked.to_str().unwrap()]);
    assert!(!ok && err.contains("private key material"), "{err}");
    let (ok, _, err) = add(&["--id", "c", "--jwks", public.to_str().unwrap()]);
    assert!(!ok && err.contains("--jwks is for private_key_jwt"), "{err}");
    // client_secret_jwt: the secret is sealed with the server's key, which the command needs.
    const VAR: &str = "CANDOR_CLIENT_ASSERTION_SECRET_KEY";
    let hmac = |key: Option<&str>, args: &[&str]| {
        let mut c = candor();
        c.args(args).arg("--store").arg(&store).env_remove(VAR);
        if let Some(k) = key {
            c.env(VAR, k);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let add_hmac = [
        "client",
        "add",
        "--name",
        "HMAC",
        "--id",
        "hmac",
        "--grant",
        "client_credentials",
        "--auth-method",
        "client_secret_jwt",
    ];
    let (ok, _, err) = hmac(None, &add_hmac);
    assert!(!ok && err.contains(VAR), "{err}");
    let key = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
    let (ok, out, err) = hmac(Some(key), &add_hmac);
    assert!(ok && out.contains("client_secret_jwt") && out.contains("client_secret:"), "{out}{err}");
    let (ok, out, err) = hmac(Some(key), &["client", "rotate-secret", "hmac"]);
    assert!(ok && out.contains("client_secret:"), "{out}{err}");
    let (ok, _, err) = hmac(None, &["client", "rotate-secret", "hmac"]);
    assert!(!ok && err.contains(VAR), "{err}");
}

#[test]
fn admin_commands_manage_clients_users_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/admin.db", dir.path().display());
    let (ok, out, err) =
        run(&["client", "add", "--name", "Shop", "--id", "shop", "--redirect-uri", "https://shop.example/cb"], &store);
    assert!(ok, "{err}");
    let secret = out.lines().find_map(|l| l.strip_prefix("client_secret:")).unwrap().trim().to_string();
    assert!(secret.starts_with("cds_") && secret.len() >= 47, "256-bit secret");
    let (ok, _, err) =
        run(&["client", "add", "--name", "Bad", "--redirect-uri", "https://shop.example/cb#frag"], &store);
    assert!(!ok && err.contains("fragment"), "{err}");
    let (ok, _, err) =
        run(&["client", "add", "--name", "Dup", "--id", "shop", "--redirect-uri", "https://x.example/cb"], &store);
    assert!(!ok && err.contains("already exists"), "{err}");
    // Logout registration: checked like redirect URIs, shown by `client show`.
    let logout = |extra: &[&str]| {
        let mut args = vec!["client", "add", "--name", "Logout", "--redirect-uri", "https://rp.example/cb"];
        args.extend_from_slice(extra);
        run(&args, &store)
    };
    let (ok, _, err) = logout(&["--post-logout-redirect-uri", "https://rp.example/bye#x"]);
    assert!(!ok && err.contains("post-logout redirect URI") && err.contains("fragment"), "{err}");
    let (ok, _, err) = logout(&["--backchannel-logout-uri", "mailto:ops@rp.example"]);
    assert!(!ok && err.contains("http or https"), "{err}");
    let (ok, _, err) = logout(&["--backchannel-logout-session-required"]);
    assert!(!ok && err.contains("needs --backchannel-logout-uri"), "{err}");
    let (ok, out, err) = logout(&[
        "--id",
        "rp",
        "--post-logout-redirect-uri",
        "https://rp.example/bye",
        "--backchannel-logout-uri",
        "https://rp.example/backchannel",
        "--backchannel-logout-session-required",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("post-logout URIs: https://rp.example/bye"), "{out}");
    assert!(out.contains("back-channel:     https://rp.example/backchannel (sid required)"), "{out}");
    let (_, out, _) = run(&["client", "list"], &store);
    assert!(out.contains("shop"));
    let (_, out, _) = run(&["client", "show", "shop"], &store);
    assert!(out.contains("https://shop.example/cb") && !out.contains(&secret));
    let (ok, out, _) = run(&["client", "rotate-secret", "shop"], &store);
    assert!(ok && !out.contains(&secret));
    let (ok, out, err) = run(&["user", "add", "bob", "--email", "bob@example.com"], &store);
    assert!(ok, "{err}");
    assert!(out.contains("password:"));
    let (_, out, _) = run(&["user", "list"], &store);
    assert!(out.contains("bob") && out.contains("active"));
    assert!(run(&["user", "disable", "bob"], &store).0);
    let (_, out, _) = run(&["user", "list"], &store);
    assert!(out.contains("disabled"));
    assert!(run(&["user", "set-password", "bob", "--password", "a-new-password"], &store).0);
    assert!(run(&["user", "remove", "bob"], &store).0);
    assert!(!run(&["user", "remove", "bob"], &store).0);
    let (ok, out, _) = run(&["key", "rotate", "--alg", "ES256"], &store);
    assert!(ok && out.contains("new ES256 key"));
    let (_, out, _) = run(&["key", "list"], &store);
    assert!(out.contains("ES256") && out.contains("active"));
    assert!(run(&["client", "remove", "shop"], &store).0);
    assert!(!run(&["client", "show", "shop"], &store).0);
}

#[test]
fn an_invalid_config_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("candor.toml");
    std::fs::write(&path, "issuer = \"https://id.example.com\"\n[lifetimes]\ncode = 3600\n").unwrap();
    let out = candor().args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lifetimes.code:") && err.contains("600"), "{err}");
    std::fs::write(&path, "issuer = \"https://id.example.com\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let out = candor().args(["serve", "--config"]).arg(&path).env("CANDOR_DISCLOSURE", "verbose").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("disclosure"), "{err}");
}

#[tokio::test]
async fn serve_runs_from_a_config_file_with_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = dir.path().join("candor.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\nstore = \"sqlite://{}/prod.db\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    // serve never migrates by itself: a fresh store is refused with the command that fixes it.
    let refused = candor().args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("run `candor migrate`"), "{err}");
    let migrated = candor().args(["migrate", "--config"]).arg(&path).output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("schema at migration"));
    let mut child = candor()
        .args(["serve", "--config"])
        .arg(&path)
        .env("CANDOR_LIFETIMES_CODE", "45")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
    let deadline = Instant::now() + Duration::from_secs(30);
    let doc: serde_json::Value = loop {
        if let Ok(r) = reqwest::get(&url).await {
            break r.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(doc["issuer"], format!("http://127.0.0.1:{port}"));
    // Standard disclosure in serve mode: no facts object.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.get("facts").is_none(), "{body}");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(dir.path().join("prod.db").exists());
}

#[tokio::test]
async fn candor_explain_prints_the_diagnosis_timeline_and_fix_of_a_trace() {
    let app = crate::helpers::spawn_app().await;
    let (cb, p) = app.code_for(crate::helpers::WEB, crate::helpers::WEB_REDIRECT, "openid").await;
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.0, 200);
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    let trace = body["trace_id"].as_str().unwrap();
    let out = candor().args(["explain", trace, "--store", &app.store_url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "refused: code_already_redeemed (invalid_grant)",
        "What Candor saw:",
        "redeemed_by_trace",
        "Timeline:",
        "authorization code issued",
        "authorization code redeemed",
        "How to fix:",
        "/errors/code_already_redeemed",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The form the trace is shown in error_description is accepted too.
    let out =
        candor().args(["explain", &format!("[trace {trace}]"), "--json", "--store", &app.store_url]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["reason"], "code_already_redeemed");
    let out = candor().args(["explain", "nope", "--store", &app.store_url]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trace nope"));
    println!("{text}");
}

#[tokio::test]
async fn flow_runs_end_to_end_against_candor_dev() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dev, lines) = start_dev(dir.path());
    let field =
        |name: &str| lines.iter().find_map(|l| l.trim().strip_prefix(name)).map(|v| v.trim().to_string()).unwrap();
    let (issuer, password, secret) = (field("issuer:"), field("password:"), field("secret:"));
    let out = tokio::task::spawn_blocking(move || {
        candor()
            .args([
                "flow",
                "--issuer",
                &issuer,
                "--client-id",
                "demo-app",
                "--redirect-uri",
                "http://localhost:3000/callback",
            ])
            .args(["--login-user", "demo", "--scope", "openid profile email offline_access", "--refresh"])
            .env("CANDOR_FLOW_LOGIN_PASSWORD", &password)
            .env("CANDOR_FLOW_CLIENT_SECRET", &secret)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    dev.kill().unwrap();
    let _ = dev.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("ok   ID token") && text.contains("ok   refreshed ID token") && text.contains("response: {"),
        "{text}"
    );
    assert!(text.contains("every step passed"));
}

/// Reads one HTTP/1.1 response (head and a `content-length` body) from `s`.
fn read_response(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_cleanly() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = start_dev(dir.path());
    let issuer = lines.iter().find_map(|l| l.trim().strip_prefix("issuer:")).unwrap().trim().to_string();
    let secret = lines.iter().find_map(|l| l.trim().strip_prefix("secret:")).unwrap().trim().to_string();
    let addr = issuer.trim_start_matches("http://").to_string();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("demo-app:{secret}"));
    let body = "grant_type=client_credentials";
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // A first request shows the connection was accepted; the second is left half-sent.
    s.write_all(format!("{head}{body}").as_bytes()).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    s.write_all(format!("{head}{}", &body[..10]).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    // New connections are refused once the node drains...
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "exited with a request in flight");
    // ...while the request in flight is finished and answered.
    s.write_all(&body.as_bytes()[10..]).unwrap();
    let answer = read_response(&mut s);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("access_token"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after its last request");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn resources_are_registered_checked_given_to_clients_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/admin.db", dir.path().display());
    let (ok, out, err) = run(
        &[
            "resource",
            "add",
            "--id",
            "https://api.example.com/",
            "--name",
            "Orders",
            "--scope",
            "orders:read",
            "--lifetime",
            "300",
        ],
        &store,
    );
    assert!(ok, "{err}");
    assert!(out.contains("access tokens:    jwt (RFC 9068, RS256)") && out.contains("300 s"), "{out}");
    let (ok, _, err) = run(&["resource", "add", "--id", "api.example.com"], &store);
    assert!(!ok && err.contains("absolute URI"), "{err}");
    let (ok, _, err) = run(&["resource", "add", "--id", "https://api.example.com/"], &store);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(&["resource", "add", "--id", "urn:x", "--lifetime", "0"], &store);
    assert!(!ok && err.contains("--lifetime"), "{err}");
    // A client is given registered resources only.
    let add = |resource: &str, id: &str| {
        run(
            &[
                "client",
                "add",
                "--name",
                "App",
                "--id",
                id,
                "--grant",
                "client_credentials",
                "--resource",
                resource,
                "--access-token-format",
                "jwt",
            ],
            &store,
        )
    };
    let (ok, _, err) = add("https://api.example.com", "a");
    assert!(!ok && err.contains("no such resource"), "{err}");
    let (ok, out, err) = add("https://api.example.com/", "b");
    assert!(ok, "{err}");
    assert!(
        out.contains("resources:        https://api.example.com/") && out.contains("access tokens:    jwt"),
        "{out}"
    );
    assert!(run(&["resource", "list"], &store).1.contains("Orders"));
    let (ok, out, err) = run(&["resource", "remove", "https://api.example.com/"], &store);
    assert!(ok && out.contains("revoked"), "{err}");
    assert!(run(&["client", "show", "b"], &store).1.contains("resources:        (none)"));
    let (ok, _, err) = run(&["resource", "remove", "https://api.example.com/"], &store);
    assert!(!ok && err.contains("no resource"), "{err}");
}

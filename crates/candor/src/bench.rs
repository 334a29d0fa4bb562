//! `candor bench`: the load driver's command line.

use candor_client::bench::{self, ClientAuth, Options, Scenario};
use clap::Args;
use std::time::Duration;

#[derive(Args)]
pub struct BenchArgs {
    /// client-credentials, code, code-sso (signed-in users), refresh, userinfo, introspection, or startup.
    #[arg(long, short)]
    scenario: String,
    /// The provider's issuer URL (plain http://; discovery is read from it).
    #[arg(long)]
    issuer: String,
    #[arg(long, default_value = "")]
    client_id: String,
    /// Also from CANDOR_BENCH_CLIENT_SECRET.
    #[arg(long, env = "CANDOR_BENCH_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Client authentication at the token endpoint: basic or post.
    #[arg(long, default_value = "basic")]
    auth: String,
    /// client-credentials: the scope to request (default: none, the client's default).
    #[arg(long)]
    scope: Option<String>,
    /// The flows' authorization request scope.
    #[arg(long, default_value = "openid")]
    flow_scope: String,
    #[arg(long, default_value = "http://127.0.0.1:9999/cb")]
    redirect_uri: String,
    /// Filled into the provider's login form, if it shows one.
    #[arg(long)]
    username: Option<String>,
    /// Also from CANDOR_BENCH_PASSWORD.
    #[arg(long, env = "CANDOR_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Extra authorization request parameter, name=value (repeatable), e.g. prompt=consent.
    #[arg(long = "authorize-param")]
    authorize_params: Vec<String>,
    /// Concurrent workers (each with its own connection).
    #[arg(long, short, default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, short, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The provider's process id: its resident memory is sampled while measuring.
    #[arg(long)]
    pid: Option<u32>,
    /// Threads of the driver itself (it shares the machine with the provider).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// startup: how many starts to time.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// startup: the command that starts the provider (after `--`).
    #[arg(last = true)]
    command: Vec<String>,
}

fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what} must be a number of seconds, got {s}"))
}

/// Runs on its own runtime with `threads` workers, so the driver's share of the machine is chosen.
pub fn run(args: BenchArgs) -> Result<(), String> {
    let issuer = args.issuer.trim_end_matches('/').to_string();
    if args.scenario == "startup" {
        if args.command.is_empty() {
            return Err("startup: give the command after `--`, e.g. candor bench -s startup --issuer http://127.0.0.1:8080 -- candor serve".into());
        }
        let probe = format!("{issuer}/.well-known/openid-configuration");
        let report = bench::startup(&args.command, &probe, args.runs, Duration::from_secs(30))?;
        return print(args.json, &report, report.to_text());
    }
    let scenario = Scenario::parse(&args.scenario).ok_or_else(|| {
        format!(
            "unknown scenario {:?}: client-credentials, code, code-sso, refresh, userinfo, introspection, device or startup",
            args.scenario
        )
    })?;
    if args.client_id.is_empty() {
        return Err("--client-id is required".into());
    }
    let auth = match args.auth.as_str() {
        "basic" | "client_secret_basic" => ClientAuth::Basic,
        "post" | "client_secret_post" => ClientAuth::Post,
        other => return Err(format!("--auth must be basic or post, got {other:?}")),
    };
    let extra_authorize = args
        .authorize_params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("--authorize-param {p:?}: expected name=value"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = Options {
        issuer,
        scenario,
        client_id: args.client_id,
        client_secret: args.client_secret,
        auth,
        scope: args.scope,
        flow_scope: args.flow_scope,
        redirect_uri: args.redirect_uri,
        username: args.username,
        password: args.password,
        extra_authorize,
        concurrency: args.concurrency,
        duration: seconds(args.duration, "--duration")?,
        warmup: seconds(args.warmup, "--warmup")?,
        pid: args.pid,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the driver's runtime: {e}"))?;
    let report = runtime.block_on(bench::run(options))?;
    print(args.json, &report, report.to_text())
}

fn print<T: serde::Serialize>(json: bool, value: &T, text: String) -> Result<(), String> {
    if json {
        println!("{}", serde_json::to_string_pretty(value).map_err(|e| e.to_string())?);
    } else {
        print!("{text}");
    }
    Ok(())
}

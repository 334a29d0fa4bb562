//! The audit log: one record per token request (and per refused authorization request), and
//! the explanation of a trace built from it and from the records of the grant involved.

use crate::clock::{UnixTime, rfc3339};
use crate::rejection::{Reason, Rejection};
use crate::store::{Store, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub trace_id: String,
    pub at: UnixTime,
    /// `token`, `authorize`, `userinfo`.
    pub endpoint: String,
    pub client_id: Option<String>,
    pub grant_type: Option<String>,
    /// `None` for a success.
    pub reason: Option<String>,
    /// Every fact, with its disclosure level: `[{"name":..,"value":..,"disclosure":..}]`.
    pub facts: Value,
    /// The grant the request concerned (links it to the code's and tokens' timeline).
    pub grant_id: Option<String>,
    /// `form`, `json` or `query`.
    pub encoding: Option<String>,
}

impl AuditRecord {
    pub fn success(trace_id: &str, at: UnixTime, endpoint: &str) -> AuditRecord {
        AuditRecord {
            trace_id: trace_id.into(),
            at,
            endpoint: endpoint.into(),
            client_id: None,
            grant_type: None,
            reason: None,
            facts: Value::Array(vec![]),
            grant_id: None,
            encoding: None,
        }
    }

    /// This request's record, refused: what was learned of the request on the way (client,
    /// grant type, body encoding) kept, the reason, facts and grant added.
    pub fn refused(self, r: &Rejection) -> AuditRecord {
        AuditRecord {
            client_id: self.client_id,
            grant_type: self.grant_type,
            encoding: self.encoding,
            ..AuditRecord::rejected(&self.trace_id, self.at, &self.endpoint, r)
        }
    }

    pub fn rejected(trace_id: &str, at: UnixTime, endpoint: &str, r: &Rejection) -> AuditRecord {
        let grant_id = r.facts.get("grant_id").and_then(Value::as_str).map(str::to_string);
        AuditRecord {
            reason: Some(r.reason.code().into()),
            facts: serde_json::to_value(&r.facts).unwrap_or(Value::Null),
            grant_id,
            ..AuditRecord::success(trace_id, at, endpoint)
        }
    }

    pub fn reason(&self) -> Option<Reason> {
        self.reason.as_deref().and_then(Reason::from_code)
    }

    /// The facts visible at a level: `internal` includes everything (admins), else public
    /// (+ detailed when `detailed`).
    pub fn visible_facts(&self, detailed: bool, internal: bool) -> Map<String, Value> {
        let mut out = Map::new();
        for f in self.facts.as_array().into_iter().flatten() {
            let (Some(name), Some(level)) = (f["name"].as_str(), f["disclosure"].as_str()) else { continue };
            let shown = match level {
                "public" => true,
                "detailed" => detailed || internal,
                _ => internal,
            };
            if shown {
                out.insert(name.to_string(), f["value"].clone());
            }
        }
        out
    }
}

/// One dated event in the life of a code or token family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at: UnixTime,
    pub time: String,
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Orders events of the same second: issuance, then requests, then revocations, then this request.
    #[serde(skip)]
    rank: u8,
}

fn event(at: UnixTime, what: impl Into<String>, trace: Option<&str>) -> Event {
    let what = what.into();
    let rank = if what.starts_with("this request") {
        9
    } else if what.contains("revoked") || what.contains("expires") {
        7
    } else if what.contains("request") {
        5
    } else {
        3
    };
    Event { at, time: rfc3339(at), what, trace_id: trace.filter(|t| !t.is_empty()).map(str::to_string), rank }
}

/// The diagnosis of one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub trace_id: String,
    pub time: String,
    pub endpoint: String,
    pub client_id: Option<String>,
    pub grant_type: Option<String>,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub summary: String,
    pub facts: Map<String, Value>,
    pub timeline: Vec<Event>,
    pub fix: Vec<String>,
    pub doc: Option<String>,
}

/// Builds the explanation of `trace_id`, or `None` if no such trace was recorded.
/// `internal` shows internal facts too (for administrators).
pub async fn explain(
    store: &dyn Store,
    trace_id: &str,
    detailed: bool,
    internal: bool,
) -> StoreResult<Option<Explanation>> {
    let Some(rec) = store.audit(trace_id).await? else { return Ok(None) };
    let reason = rec.reason();
    let mut timeline = Vec::new();
    if let Some(grant_id) = &rec.grant_id {
        timeline = grant_timeline(store, grant_id, trace_id).await?;
    }
    timeline.push(event(
        rec.at,
        format!(
            "this request ({} {})",
            rec.endpoint,
            match reason {
                Some(r) => format!("refused: {}", r.code()),
                None => "succeeded".into(),
            }
        ),
        Some(&rec.trace_id),
    ));
    timeline.sort_by_key(|e| (e.at, e.rank));
    timeline.dedup_by(|a, b| a.at == b.at && a.what == b.what && a.trace_id == b.trace_id);
    let fix = reason.map(crate::docs::fix).unwrap_or_default();
    Ok(Some(Explanation {
        trace_id: rec.trace_id.clone(),
        time: rfc3339(rec.at),
        endpoint: rec.endpoint.clone(),
        client_id: rec.client_id.clone(),
        grant_type: rec.grant_type.clone(),
        outcome: if reason.is_some() { "rejected" } else { "succeeded" },
        reason: reason.map(|r| r.code().to_string()),
        error: reason.map(|r| r.error().to_string()),
        summary: reason.map_or("The request succeeded.".to_string(), crate::docs::summary),
        facts: rec.visible_facts(detailed, internal),
        timeline,
        fix,
        doc: reason.map(|r| format!("/errors/{}", r.code())),
    }))
}

/// Everything dated about a grant: its code, its tokens, and the requests that touched it.
pub async fn grant_timeline(store: &dyn Store, grant_id: &str, this_trace: &str) -> StoreResult<Vec<Event>> {
    let mut out = Vec::new();
    if let Some(code) = store.code_by_grant(grant_id).await? {
        out.push(event(
            code.issued_at,
            format!(
                "authorization code issued to client {} (lifetime {} s)",
                code.client_id,
                code.expires_at - code.issued_at
            ),
            Some(&code.issued_trace),
        ));
        match code.redeemed_at {
            Some(at) => out.push(event(at, "authorization code redeemed", code.redeemed_trace.as_deref())),
            None => out.push(event(code.expires_at, "authorization code expires (never redeemed)", None)),
        }
    }
    let (access, refresh) = store.tokens_of_grant(grant_id).await?;
    for a in &access {
        out.push(event(a.issued_at, format!("access token issued (scope {})", a.scope), None));
        if let Some(at) = a.revoked_at {
            out.push(event(at, "access token revoked", None));
        }
    }
    for r in &refresh {
        out.push(event(r.issued_at, "refresh token issued", Some(&r.issued_trace)));
        if let Some(at) = r.rotated_at {
            out.push(event(at, "refresh token rotated (this one is now dead)", r.rotated_trace.as_deref()));
        }
        if let Some(at) = r.revoked_at {
            out.push(event(at, "refresh token revoked", None));
        }
    }
    for rec in store.audit_by_grant(grant_id).await? {
        if rec.trace_id == this_trace {
            continue;
        }
        let what = match rec.reason() {
            Some(r) => format!("{} request refused: {}", rec.endpoint, r.code()),
            // The verification page's decision (RFC 8628 §3.3).
            None if rec.endpoint == "device" => {
                let facts = rec.visible_facts(true, false);
                let decision = facts.get("decision").and_then(Value::as_str).unwrap_or("decided on");
                format!("the user {decision} the device at the verification page")
            }
            None => format!("{} request succeeded", rec.endpoint),
        };
        out.push(event(rec.at, what, Some(&rec.trace_id)));
    }
    Ok(out)
}

impl Explanation {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// The human diagnosis printed by `candor explain`.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("trace {}  {}  {}\n", self.trace_id, self.time, self.endpoint));
        if let Some(c) = &self.client_id {
            s.push_str(&format!("client   {c}\n"));
        }
        if let Some(g) = &self.grant_type {
            s.push_str(&format!("grant    {g}\n"));
        }
        match (&self.reason, &self.error) {
            (Some(r), Some(e)) => s.push_str(&format!("outcome  refused: {r} ({e})\n")),
            _ => s.push_str("outcome  succeeded\n"),
        }
        s.push_str(&format!("\n{}\n", self.summary));
        if !self.facts.is_empty() {
            s.push_str("\nWhat Candor saw:\n");
            for (k, v) in &self.facts {
                let v = match v {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                s.push_str(&format!("  {k:<28} {v}\n"));
            }
        }
        if !self.timeline.is_empty() {
            s.push_str("\nTimeline:\n");
            for e in &self.timeline {
                let trace = e.trace_id.as_deref().map(|t| format!("  [trace {t}]")).unwrap_or_default();
                s.push_str(&format!("  {}  {}{trace}\n", e.time, e.what));
            }
        }
        if !self.fix.is_empty() {
            s.push_str("\nHow to fix:\n");
            for f in &self.fix {
                s.push_str(&format!("  - {f}\n"));
            }
        }
        if let Some(d) = &self.doc {
            s.push_str(&format!("\nMore: {d}\n"));
        }
        s
    }
}

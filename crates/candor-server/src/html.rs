//! Server-rendered pages: one layout, escaped text, no JavaScript.

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    layout(title, body, "card")
}

/// A page for tables and documentation.
pub fn wide_page(title: &str, body: &str) -> String {
    layout(title, body, "card wide")
}

fn layout(title: &str, body: &str, class: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Candor</title>
<link rel="stylesheet" href="/assets/candor.css">
</head>
<body>
<main class="{class}">
<p class="brand">Candor</p>
{body}
</main>
</body>
</html>
"#,
        title = esc(title),
        body = body,
        class = class
    )
}

pub const STYLESHEET: &str = r#"
:root { color-scheme: light dark; --fg:#1d2330; --muted:#5b6475; --bg:#eef1f6; --card:#fff; --accent:#2454d6; --err:#b42318; --line:#d6dbe4; }
@media (prefers-color-scheme: dark) { :root { --fg:#e6e9ef; --muted:#a2abbd; --bg:#12151c; --card:#1b2029; --accent:#7aa2ff; --err:#ff8a80; --line:#2d3442; } }
* { box-sizing: border-box; }
body { margin:0; min-height:100vh; display:flex; align-items:center; justify-content:center; background:var(--bg); color:var(--fg); font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
.card { width:100%; max-width:26rem; margin:2rem 1rem; padding:2rem; background:var(--card); border:1px solid var(--line); border-radius:12px; box-shadow:0 8px 24px rgba(0,0,0,.06); }
.brand { margin:0 0 1.25rem; font-weight:700; letter-spacing:.02em; color:var(--accent); }
h1 { font-size:1.35rem; margin:0 0 .5rem; }
p { margin:.5rem 0; }
.muted { color:var(--muted); font-size:.925rem; }
label { display:block; margin:1rem 0 .25rem; font-weight:600; font-size:.925rem; }
input[type=text], input[type=password] { width:100%; padding:.6rem .7rem; font:inherit; color:inherit; background:transparent; border:1px solid var(--line); border-radius:8px; }
input:focus, button:focus { outline:2px solid var(--accent); outline-offset:2px; }
button { font:inherit; font-weight:600; padding:.6rem 1.1rem; border-radius:8px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.secondary { background:transparent; color:var(--accent); }
.actions { display:flex; gap:.75rem; margin-top:1.5rem; flex-wrap:wrap; }
.error { color:var(--err); background:color-mix(in srgb, var(--err) 8%, transparent); border-radius:8px; padding:.6rem .75rem; }
ul.scopes { padding-left:1.2rem; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.25rem .75rem; font-size:.875rem; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; word-break:break-all; font-family:ui-monospace,SFMono-Regular,Menlo,monospace; }
.card.wide { max-width:60rem; }
h2 { font-size:1.05rem; margin:1.5rem 0 .5rem; }
table { width:100%; border-collapse:collapse; font-size:.9rem; }
th, td { text-align:left; padding:.4rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
td.num, th.num { text-align:right; }
pre { overflow-x:auto; padding:.75rem; border-radius:8px; background:color-mix(in srgb, var(--fg) 6%, transparent); }
a { color:var(--accent); }
code { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:.9em; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(esc(r#"<a href="x">'&"#), "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;");
    }
}

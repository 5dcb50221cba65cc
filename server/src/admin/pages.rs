//! The console's HTML (maud templates, escaped by construction) and its two
//! embedded assets. Each page has a live part (`data-live`) that the page
//! script replaces from Server-Sent Events, and static forms outside it.

use std::fmt::Write as _;
use std::path::Path;

use maud::{DOCTYPE, Markup, html};

use super::logs;
use super::snapshot::{ChatKind, Snapshot};

/// The stylesheet, embedded in the binary.
pub const STYLE_CSS: &str = include_str!("assets/style.css");
/// The page script (live updates), embedded in the binary.
pub const APP_JS: &str = include_str!("assets/app.js");

/// The console's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Players online, tick times, plugin states, bundle bytes.
    Dashboard,
    /// Players, with kick.
    Players,
    /// Plugins, with reload/enable/disable and their logs.
    Plugins,
    /// Chat and command log, with broadcast.
    Chat,
    /// Configuration, uptime, version and the admins list.
    Server,
}

impl Page {
    /// Every page, in navigation order.
    pub const ALL: [Page; 5] = [
        Page::Dashboard,
        Page::Players,
        Page::Plugins,
        Page::Chat,
        Page::Server,
    ];

    /// The page's path.
    pub fn path(self) -> &'static str {
        match self {
            Page::Dashboard => "/",
            Page::Players => "/players",
            Page::Plugins => "/plugins",
            Page::Chat => "/chat",
            Page::Server => "/server",
        }
    }

    /// The name in `/events/{slug}`.
    pub fn slug(self) -> &'static str {
        match self {
            Page::Dashboard => "dashboard",
            Page::Players => "players",
            Page::Plugins => "plugins",
            Page::Chat => "chat",
            Page::Server => "server",
        }
    }

    /// The page for a slug.
    pub fn from_slug(s: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| p.slug() == s)
    }

    fn title(self) -> &'static str {
        match self {
            Page::Dashboard => "Dashboard",
            Page::Players => "Players",
            Page::Plugins => "Plugins",
            Page::Chat => "Chat",
            Page::Server => "Server",
        }
    }
}

/// What a page needs besides the snapshot.
pub struct Ctx<'a> {
    /// The latest snapshot.
    pub snap: &'a Snapshot,
    /// The session's CSRF token, put in every form.
    pub csrf: &'a str,
    /// Folder of the plugins' logs.
    pub logs_dir: &'a Path,
    /// Bundle bytes served, transfers finished and mirror fallbacks.
    pub bundles: super::metrics::BundleTotals,
    /// Configuration rows for the Server page (secrets already hidden).
    pub config_rows: &'a [(String, String)],
    /// The last check of the asset mirrors, once one has finished.
    pub mirrors: Option<crate::mirror_check::CheckSummary>,
    /// `asset_mirrors` (the Server page offers to check them).
    pub mirror_list: &'a [String],
}

/// A whole page: navigation, a status line, the live part and the static forms.
pub fn page(page: Page, ctx: &Ctx<'_>, flash: Option<&str>) -> Markup {
    let title = page.title();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console" {
                        ul {
                            @for p in Page::ALL {
                                li {
                                    @if p == page {
                                        a href=(p.path()) aria-current="page" { (p.title()) }
                                    } @else {
                                        a href=(p.path()) { (p.title()) }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    p #status role="status" aria-live="polite" {
                        @if let Some(f) = flash { (f) }
                    }
                    div #live data-live=(page.slug()) {
                        (live(page, ctx))
                    }
                    (static_part(page, ctx))
                }
            }
        }
    }
}

/// The part of a page that live updates replace.
pub fn live(page: Page, ctx: &Ctx<'_>) -> Markup {
    match page {
        Page::Dashboard => dashboard(ctx),
        Page::Players => players(ctx),
        Page::Plugins => plugins(ctx),
        Page::Chat => chat(ctx),
        Page::Server => server(ctx),
    }
}

fn csrf_field(ctx: &Ctx<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

fn static_part(page: Page, ctx: &Ctx<'_>) -> Markup {
    match page {
        Page::Chat => html! {
            form.inline method="post" action="/broadcast" {
                (csrf_field(ctx))
                label for="broadcast-text" { "Message to every player" }
                input #broadcast-text type="text" name="text" required maxlength=(shard_protocol::limits::MAX_CHAT_CHARS);
                button type="submit" { "Broadcast" }
            }
        },
        Page::Server => html! {
            h2 { "Configuration in effect" }
            table {
                caption { "Keys of server.toml after defaults and command-line options; secrets hidden" }
                thead { tr { th scope="col" { "Key" } th scope="col" { "Value" } } }
                tbody {
                    @for (k, v) in ctx.config_rows {
                        tr { th scope="row" { code { (k) } } td { code { (v) } } }
                    }
                }
            }
            form.inline method="post" action="/admins/add" {
                (csrf_field(ctx))
                label for="admin-fp" { "Add an admin by key fingerprint (64 hex digits)" }
                input #admin-fp type="text" name="fingerprint" required pattern="[0-9a-fA-F]{64}" size="66";
                button type="submit" { "Add admin" }
            }
        },
        _ => html! {},
    }
}

fn ms(v: f64) -> String {
    format!("{v:.2} ms")
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn dashboard(ctx: &Ctx<'_>) -> Markup {
    let s = ctx.snap;
    html! {
        dl.stats {
            div { dt { "Players online" } dd #players-online { (s.players.len()) } }
            div { dt { "Tick rate" } dd { (format!("{:.1}", s.tick_rate)) " / " (s.tick_hz) " Hz" } }
            div { dt { "Tick p50" } dd { (ms(s.tick_p50_ms)) } }
            div { dt { "Tick p99" } dd { (ms(s.tick_p99_ms)) } }
            div { dt { "Bundle bytes served" } dd { (bytes(ctx.bundles.bytes)) " in " (ctx.bundles.transfers) " transfers" } }
            div { dt { "Mirror fallbacks" } dd title="Bundles players asked of this server although asset_mirrors are set" { (ctx.bundles.mirror_fallbacks) } }
        }
        h2 { "Players" }
        @if s.players.is_empty() {
            p { "Nobody is online." }
        } @else {
            ul.names { @for p in &s.players { li { (p.name) } } }
        }
        h2 { "Tick time" }
        (chart(s))
        h2 { "Plugins" }
        @if s.plugins.is_empty() {
            p { "No plugins." }
        } @else {
            ul.names {
                @for p in &s.plugins {
                    li { (p.name) " " span class={"badge " (p.state)} { (p.state) } }
                }
            }
        }
    }
}

/// The p50/p99 tick-time chart as inline SVG (no script, no external library).
fn chart(s: &Snapshot) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    if s.history.len() < 2 {
        return html! { p { "The chart fills in over the first minutes (one point every 5 seconds)." } };
    }
    let top = s.history.iter().map(|p| p.p99_ms).fold(1.0_f64, f64::max) * 1.1;
    let n = s.history.len() - 1;
    let line = |f: fn(&super::snapshot::TickPoint) -> f64| {
        let mut pts = String::new();
        for (i, p) in s.history.iter().enumerate() {
            let x = W * i as f64 / n as f64;
            let y = H - H * (f(p) / top).min(1.0);
            let _ = write!(pts, "{x:.1},{y:.1} ");
        }
        pts
    };
    let minutes = (s.history.len() as f64 * 5.0 / 60.0).ceil();
    let label = format!(
        "Tick time over the last {minutes} minutes: now p50 {}, p99 {}; top of the chart {}",
        ms(s.tick_p50_ms),
        ms(s.tick_p99_ms),
        ms(top)
    );
    html! {
        figure {
            svg.chart viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(label) {
                polyline.p99 points=(line(|p| p.p99_ms)) {}
                polyline.p50 points=(line(|p| p.p50_ms)) {}
            }
            figcaption {
                span.key.p99 { "p99" } " " span.key.p50 { "p50" } " — top " (ms(top)) ", one point every 5 s"
            }
        }
    }
}

fn players(ctx: &Ctx<'_>) -> Markup {
    let s = ctx.snap;
    html! {
        table #players {
            caption { (s.players.len()) " players online" }
            thead {
                tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Peer id" }
                    th scope="col" { "Fingerprint" }
                    th scope="col" { "Phase" }
                    th scope="col" { "Position" }
                    th scope="col" { "RTT" }
                    th scope="col" { "Kick" }
                }
            }
            tbody {
                @for p in &s.players {
                    tr data-peer=(p.peer_id) {
                        th scope="row" {
                            (p.name)
                            @if p.admin { " " span.badge.admin { "admin" } }
                        }
                        td { (p.peer_id) }
                        td { code.fp title=(p.fingerprint) { (p.fingerprint.get(..16).unwrap_or(&p.fingerprint)) "…" } }
                        td { (p.phase) }
                        td { (format!("{:.1}, {:.1}, {:.1}", p.pos[0], p.pos[1], p.pos[2])) }
                        td { @if let Some(r) = p.rtt_ms { (ms(r)) } @else { "—" } }
                        td {
                            form.inline method="post" action=(format!("/players/{}/kick", p.peer_id)) {
                                (csrf_field(ctx))
                                label.sr for=(format!("reason-{}", p.peer_id)) { "Reason for kicking " (p.name) }
                                input id=(format!("reason-{}", p.peer_id)) type="text" name="reason" placeholder="reason" maxlength=(shard_protocol::limits::MAX_REASON);
                                button type="submit" { "Kick " span.sr { (p.name) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn plugins(ctx: &Ctx<'_>) -> Markup {
    let s = ctx.snap;
    html! {
        @if s.plugins.is_empty() { p { "No plugins in the plugin folder." } }
        @for p in &s.plugins {
            section.plugin #(format!("plugin-{}", p.name)) aria-labelledby=(format!("h-{}", p.name)) {
                h2 id=(format!("h-{}", p.name)) { (p.name) " " span class={"badge " (p.state)} data-state=(p.state) { (p.state) } }
                dl.fields {
                    div { dt { "Version" } dd { (p.version) } }
                    div { dt { "Hash" } dd { code title=(p.hash) { (p.hash.get(..16).unwrap_or(&p.hash)) "…" } } }
                    div { dt { "Errors" } dd.errors { (p.errors) } }
                    div { dt { "Restarts" } dd { (p.restarts) } }
                    div { dt { "Worker pid" } dd { @if let Some(pid) = p.worker_pid { (pid) } @else { "—" } } }
                    div { dt { "Bundle" } dd { @if let Some(b) = p.bundle_bytes { (bytes(b)) } @else { "none" } } }
                    @if let Some(file) = &p.bundle_file {
                        div { dt { "Mirror file" } dd { code title=(file) { (file.get(..16).unwrap_or(file)) "….bundle" } } }
                    }
                    div { dt { "RPCs" } dd { @if p.rpc_names.is_empty() { "none" } @else { (p.rpc_names.join(", ")) } } }
                }
                @if let Some(e) = &p.last_error {
                    h3 { "Last error" }
                    pre.error { (e) }
                }
                div.actions {
                    @for verb in ["reload", "enable", "disable"] {
                        form.inline method="post" action=(format!("/plugins/{}/{verb}", p.name)) {
                            (csrf_field(ctx))
                            button type="submit" data-action=(verb) { (verb) " " span.sr { (p.name) } }
                        }
                    }
                }
                h3 { "Log" }
                pre.log tabindex="0" aria-label=(format!("Last lines of the {} log", p.name)) {
                    (logs::tail(ctx.logs_dir, &p.name))
                }
            }
        }
    }
}

fn chat(ctx: &Ctx<'_>) -> Markup {
    let s = ctx.snap;
    html! {
        @if s.chat.is_empty() { p { "No chat yet." } }
        ol.chat aria-label="Chat and command log, oldest first" {
            @for l in &s.chat {
                li class=(match l.kind { ChatKind::Chat => "chat", ChatKind::Command => "command", ChatKind::Server => "server" }) {
                    span.time { (format!("{}:{:02}:{:02}", l.at_secs / 3600, l.at_secs / 60 % 60, l.at_secs % 60)) }
                    " " strong { (l.from) } ": " span.text { (l.text) }
                }
            }
        }
    }
}

fn server(ctx: &Ctx<'_>) -> Markup {
    let s = ctx.snap;
    let up = s.uptime_secs;
    html! {
        dl.stats {
            div { dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) } }
            div { dt { "Uptime" } dd { (format!("{}h {:02}m {:02}s", up / 3600, up / 60 % 60, up % 60)) } }
            div { dt { "Ticks" } dd { (s.ticks) } }
        }
        @if !ctx.mirror_list.is_empty() {
            h2 { "Asset mirrors" }
            @if let Some(m) = &ctx.mirrors {
                p { "Checked at " (m.at) " UTC." }
                table.mirrors {
                    thead { tr { th scope="col" { "Mirror" } th scope="col" { "Serves" } } }
                    tbody {
                        @for (mirror, status) in &m.rows {
                            tr { td { code { (mirror) } } td { (status) } }
                        }
                    }
                }
            } @else {
                p { "Not checked yet." }
            }
            form.inline method="post" action="/mirrors/check" {
                (csrf_field(ctx))
                button type="submit" { "Check the mirrors now" }
            }
        }
        h2 { "Admins" }
        @if s.admins.is_empty() { p { "No admins." } }
        ul.admins {
            @for a in &s.admins {
                li {
                    code { (a) }
                    form.inline method="post" action=(format!("/admins/{a}/remove")) {
                        (csrf_field(ctx))
                        button type="submit" { "Remove " span.sr { "admin " (a) } }
                    }
                }
            }
        }
    }
}

/// The `<head>` of every console page: `title` and the stylesheet, and the
/// live-update script where the page has live parts.
fn head(title: &str, live_script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · shard admin" }
            link rel="stylesheet" href="/assets/style.css";
            @if live_script {
                script src="/assets/app.js" defer {}
            }
        }
    }
}

/// The login page: a token form, with the reason the last try failed.
pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", false))
            body {
                main #main {
                    h1 { "shard admin" }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form method="post" action="/login" {
                        label for="token" { "Admin token (from the server's data folder, file admin-token)" }
                        input #token type="password" name="token" required autocomplete="current-password" autofocus;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// A page for an error the browser reached (401, 403, 404...).
pub fn error_page(title: &str, text: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } link rel="stylesheet" href="/assets/style.css"; }
            body { main #main { h1 { (title) } p { (text) } p { a href="/login" { "Log in" } } } }
        }
    }
}

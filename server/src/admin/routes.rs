//! The console's HTTP routes: login, pages, live events, the plain POST
//! actions and `/metrics`. Every route but `/login`, `/assets/*` and (on
//! loopback) `/metrics` needs a session (401 without); every POST also needs
//! the session's CSRF token (403 without), as a `csrf` form field or an
//! `X-CSRF-Token` header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use maud::Markup;
use metrics_exporter_prometheus::PrometheusHandle;
use shard_protocol::identity::Fingerprint;
use shard_protocol::limits;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::WatchStream;
use tracing::{info, warn};

use super::auth::{self, LoginLimiter, SESSION_COOKIE, SessionView, Sessions};
use super::pages::{self, Ctx, Page};
use super::snapshot::Snapshot;
use super::{AdminCmd, PluginAction};
use crate::sim::Inbound;
use crate::tuning::{ADMIN_ACTION_TIMEOUT, ADMIN_MAX_BODY};

/// What every handler shares.
pub struct AppState {
    /// The simulation's latest snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The simulation's inbound queue (commands go in like a client's messages).
    pub inbound: mpsc::Sender<Inbound>,
    /// Logged-in sessions.
    pub sessions: Sessions,
    /// Failed-login limiter.
    pub limiter: LoginLimiter,
    /// The token file (read at each login, so a rotation applies at once).
    pub token_path: PathBuf,
    /// Bearer token `/metrics` requires (set when the console is off loopback).
    pub metrics_token: Option<String>,
    /// The Prometheus recorder's handle.
    pub prometheus: Option<PrometheusHandle>,
    /// Mark the cookie `Secure` (HTTPS).
    pub secure_cookie: bool,
    /// Folder of plugin logs.
    pub logs_dir: PathBuf,
    /// Configuration rows for the Server page (secrets hidden).
    pub config_rows: Vec<(String, String)>,
    /// The `server.toml` admins are written back to.
    pub config_path: Option<PathBuf>,
    /// One admins edit at a time.
    pub admins_lock: tokio::sync::Mutex<()>,
    /// `asset_mirrors` and `mirror_ca`, for a check the operator asks for,
    /// and the last check's result.
    pub mirrors: crate::mirror_check::Target,
    /// Set while a check of the mirrors asked for here runs (one at a time).
    pub mirror_check_running: std::sync::atomic::AtomicBool,
}

type St = State<Arc<AppState>>;

/// The router with every route and the security headers.
pub fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/", get(page_dashboard))
        .route("/players", get(page_players))
        .route("/plugins", get(page_plugins))
        .route("/chat", get(page_chat))
        .route("/server", get(page_server))
        .route("/events/{page}", get(events))
        .route("/api/snapshot", get(api_snapshot))
        .route("/logout", post(logout))
        .route("/players/{peer_id}/kick", post(kick))
        .route("/plugins/{name}/{action}", post(plugin_action))
        .route("/broadcast", post(broadcast))
        .route("/mirrors/check", post(check_mirrors))
        .route("/admins/add", post(admin_add))
        .route("/admins/{fingerprint}/remove", post(admin_remove))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(login_get).post(login_post))
        .route("/metrics", get(metrics))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .merge(protected)
        .layer(axum::extract::DefaultBodyLimit::max(ADMIN_MAX_BODY))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The login URL carries the token: never send it on as a referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

fn html(status: StatusCode, m: Markup) -> Response {
    (status, m).into_response()
}

fn unauthorized() -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        pages::error_page("Not logged in", "Log in with the admin token first."),
    )
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == SESSION_COOKIE
            {
                return Some(val.to_string());
            }
        }
    }
    None
}

/// 401 without a valid session; 403 for a POST without its CSRF token.
async fn require_session(State(st): St, req: Request, next: Next) -> Response {
    let Some(view) = session_cookie(req.headers()).and_then(|id| st.sessions.get(&id)) else {
        return unauthorized();
    };
    // A rotated token ends every session opened with the old one.
    let current = auth::read_token(&st.token_path).map(|t| auth::token_digest(&t));
    if !current.is_ok_and(|d| auth::secrets_equal_bytes(&d, &view.token)) {
        st.sessions.close(&view.id);
        return unauthorized();
    }
    let req = if req.method() == Method::POST {
        match check_csrf(&view, req).await {
            Ok(req) => req,
            Err(res) => return res,
        }
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(view);
    next.run(req).await
}

/// Finds the CSRF token in the header or the form body (which is put back).
async fn check_csrf(view: &SessionView, req: Request) -> Result<Request, Response> {
    let forbidden = || {
        html(
            StatusCode::FORBIDDEN,
            pages::error_page(
                "Forbidden",
                "This request lacks the page's CSRF token; reload the page and try again.",
            ),
        )
    };
    if let Some(t) = req.headers().get("x-csrf-token") {
        return match t.to_str() {
            Ok(t) if auth::secrets_equal(t, &view.csrf) => Ok(req),
            _ => Err(forbidden()),
        };
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, ADMIN_MAX_BODY)
        .await
        .map_err(|_| {
            html(
                StatusCode::PAYLOAD_TOO_LARGE,
                pages::error_page("Too large", "The request body is too large."),
            )
        })?;
    let ok = form_urlencoded::parse(&bytes)
        .any(|(k, v)| k == "csrf" && auth::secrets_equal(&v, &view.csrf));
    if !ok {
        return Err(forbidden());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

#[derive(serde::Deserialize)]
struct TokenForm {
    token: Option<String>,
}

async fn login_get(
    State(st): St,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    match q.token {
        Some(t) => login(&st, remote, &t),
        None if session_cookie(&headers)
            .and_then(|id| st.sessions.get(&id))
            .is_some() =>
        {
            Redirect::to("/").into_response()
        }
        None => html(StatusCode::OK, pages::login(None)),
    }
}

async fn login_post(
    State(st): St,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Form(f): Form<TokenForm>,
) -> Response {
    login(&st, remote, f.token.as_deref().unwrap_or(""))
}

fn login(st: &AppState, remote: SocketAddr, given: &str) -> Response {
    let ip = remote.ip();
    if !st.limiter.allowed(ip) {
        warn!(%ip, "admin login refused: too many failed logins");
        super::metrics::login_failed();
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(Some(
                "Too many failed logins from this address; wait a minute.",
            )),
        );
    }
    let ok = match auth::read_token(&st.token_path) {
        Ok(token) => auth::secrets_equal(given.trim(), &token).then(|| auth::token_digest(&token)),
        Err(e) => {
            warn!(error = %e, "admin login impossible: no token");
            None
        }
    };
    let Some(digest) = ok else {
        st.limiter.failed(ip);
        super::metrics::login_failed();
        warn!(%ip, "admin login failed: wrong token");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some(
                "Wrong token. It is in the file admin-token in the server's data folder.",
            )),
        );
    };
    st.limiter.succeeded(ip);
    let id = st.sessions.open(digest);
    info!(%ip, "admin logged in");
    let secure = if st.secure_cookie { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn logout(State(st): St, Extension(s): Extension<SessionView>) -> Response {
    st.sessions.close(&s.id);
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("shard_admin=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

fn render(st: &AppState, page: Page, s: &SessionView) -> Response {
    let snap = st.snapshots.borrow().clone();
    let ctx = Ctx {
        snap: &snap,
        csrf: &s.csrf,
        logs_dir: &st.logs_dir,
        bundles: super::metrics::bundle_totals(),
        config_rows: &st.config_rows,
        mirrors: st.mirrors.last.get(),
        mirror_list: &st.mirrors.mirrors,
    };
    let flash = st.sessions.take_flash(&s.id);
    html(StatusCode::OK, pages::page(page, &ctx, flash.as_deref()))
}

async fn page_dashboard(State(st): St, Extension(s): Extension<SessionView>) -> Response {
    render(&st, Page::Dashboard, &s)
}
async fn page_players(State(st): St, Extension(s): Extension<SessionView>) -> Response {
    render(&st, Page::Players, &s)
}
async fn page_plugins(State(st): St, Extension(s): Extension<SessionView>) -> Response {
    render(&st, Page::Plugins, &s)
}
async fn page_chat(State(st): St, Extension(s): Extension<SessionView>) -> Response {
    render(&st, Page::Chat, &s)
}
async fn page_server(State(st): St, Extension(s): Extension<SessionView>) -> Response {
    render(&st, Page::Server, &s)
}

/// Server-Sent Events: the page's live part, re-rendered at each snapshot.
async fn events(
    State(st): St,
    Extension(s): Extension<SessionView>,
    Path(slug): Path<String>,
) -> Response {
    let Some(page) = Page::from_slug(&slug) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let stream = WatchStream::new(st.snapshots.clone()).map(move |snap| {
        if !st.sessions.is_open(&s.id) {
            return Ok::<_, Infallible>(Event::default().event("logout").data("session ended"));
        }
        let ctx = Ctx {
            snap: &snap,
            csrf: &s.csrf,
            logs_dir: &st.logs_dir,
            bundles: super::metrics::bundle_totals(),
            config_rows: &st.config_rows,
            mirrors: st.mirrors.last.get(),
            mirror_list: &st.mirrors.mirrors,
        };
        let body = serde_json::json!({"html": pages::live(page, &ctx).into_string()});
        Ok(Event::default().event("update").data(body.to_string()))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn api_snapshot(State(st): St) -> Response {
    let snap = st.snapshots.borrow().clone();
    Json(&*snap).into_response()
}

/// `/metrics`: open on loopback, bearer token otherwise.
async fn metrics(State(st): St, headers: HeaderMap) -> Response {
    if let Some(want) = &st.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !auth::secrets_equal(given.trim(), want) {
            let mut res = (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    match &st.prometheus {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder was installed in this process\n",
        )
            .into_response(),
    }
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        pages::STYLE_CSS,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        pages::APP_JS,
    )
        .into_response()
}

/// Sends a command to the simulation and waits (bounded) for its answer.
async fn run(st: &AppState, cmd: AdminCmd) -> Result<String, (StatusCode, String)> {
    let (reply, rx) = oneshot::channel();
    let stopped = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the simulation has stopped".to_string(),
        )
    };
    tokio::time::timeout(
        ADMIN_ACTION_TIMEOUT,
        st.inbound.send(Inbound::Admin { cmd, reply }),
    )
    .await
    .map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the simulation is busy".into(),
        )
    })?
    .map_err(|_| stopped())?;
    match tokio::time::timeout(ADMIN_ACTION_TIMEOUT, rx).await {
        Ok(Ok(Ok(msg))) => Ok(msg),
        Ok(Ok(Err(e))) => Err((StatusCode::CONFLICT, e.to_string())),
        Ok(Err(_)) => Err(stopped()),
        Err(_) => Err((
            StatusCode::GATEWAY_TIMEOUT,
            "the simulation did not answer in time".into(),
        )),
    }
}

/// Answers an action: JSON for scripts (they send `X-CSRF-Token`), else a
/// message for the next page and a redirect back to `back`.
fn answer(
    st: &AppState,
    s: &SessionView,
    headers: &HeaderMap,
    back: Page,
    result: Result<String, (StatusCode, String)>,
) -> Response {
    let (status, ok, message) = match result {
        Ok(m) => (StatusCode::OK, true, m),
        Err((status, m)) => (status, false, m),
    };
    if headers.contains_key("x-csrf-token") {
        return (
            status,
            Json(serde_json::json!({"ok": ok, "message": message})),
        )
            .into_response();
    }
    let text = if ok {
        message
    } else {
        format!("Failed: {message}")
    };
    st.sessions.set_flash(&s.id, text);
    Redirect::to(back.path()).into_response()
}

#[derive(serde::Deserialize)]
struct KickForm {
    reason: Option<String>,
}

async fn kick(
    State(st): St,
    Extension(s): Extension<SessionView>,
    headers: HeaderMap,
    Path(peer_id): Path<u32>,
    Form(f): Form<KickForm>,
) -> Response {
    let reason = f
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "kicked by the server operator".into());
    let reason: String = reason.chars().take(limits::MAX_REASON).collect();
    info!(peer_id, %reason, "admin console: kick");
    let r = run(
        &st,
        AdminCmd::Kick {
            peer: peer_id,
            reason,
        },
    )
    .await;
    answer(&st, &s, &headers, Page::Players, r)
}

async fn plugin_action(
    State(st): St,
    Extension(s): Extension<SessionView>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let action = match action.as_str() {
        "reload" => PluginAction::Reload,
        "enable" => PluginAction::Enable,
        "disable" => PluginAction::Disable,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if name.len() > limits::MAX_PLUGIN_NAME {
        return StatusCode::NOT_FOUND.into_response();
    }
    info!(plugin = %name, ?action, "admin console: plugin");
    let r = run(&st, AdminCmd::Plugin { name, action }).await;
    answer(&st, &s, &headers, Page::Plugins, r)
}

#[derive(serde::Deserialize)]
struct BroadcastForm {
    text: Option<String>,
}

async fn broadcast(
    State(st): St,
    Extension(s): Extension<SessionView>,
    headers: HeaderMap,
    Form(f): Form<BroadcastForm>,
) -> Response {
    let text = f.text.unwrap_or_default().trim().to_string();
    let r = if text.is_empty() {
        Err((StatusCode::BAD_REQUEST, "the message is empty".to_string()))
    } else if text.chars().count() > limits::MAX_CHAT_CHARS {
        Err((
            StatusCode::BAD_REQUEST,
            format!(
                "the message is longer than {} characters",
                limits::MAX_CHAT_CHARS
            ),
        ))
    } else {
        info!(%text, "admin console: broadcast");
        run(&st, AdminCmd::Broadcast { text }).await
    };
    answer(&st, &s, &headers, Page::Chat, r)
}

/// Checks the asset mirrors again (after an upload), in the background; the
/// Server page and `/metrics` show the result when it is done.
async fn check_mirrors(
    State(st): St,
    Extension(s): Extension<SessionView>,
    headers: HeaderMap,
) -> Response {
    use std::sync::atomic::Ordering;
    let r = if st.mirrors.mirrors.is_empty() {
        Err((
            StatusCode::CONFLICT,
            "no asset_mirrors are configured".to_string(),
        ))
    } else if st.mirror_check_running.swap(true, Ordering::AcqRel) {
        Ok("a check of the asset mirrors is already running".to_string())
    } else {
        info!("admin console: checking the asset mirrors");
        let (snap, mirrors, done) = (
            st.snapshots.borrow().clone(),
            st.mirrors.clone(),
            st.clone(),
        );
        tokio::spawn(async move {
            // Cleared however the check ends, so one that failed never
            // blocks the next.
            let _running = CheckRunning(done);
            crate::mirror_check::check_and_log(mirrors, snap).await;
        });
        Ok("checking the asset mirrors; the table updates when it is done".to_string())
    };
    answer(&st, &s, &headers, Page::Server, r)
}

/// Clears `mirror_check_running` when dropped.
struct CheckRunning(Arc<AppState>);

impl Drop for CheckRunning {
    fn drop(&mut self) {
        self.0
            .mirror_check_running
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

#[derive(serde::Deserialize)]
struct AdminForm {
    fingerprint: Option<String>,
}

async fn admin_add(
    State(st): St,
    Extension(s): Extension<SessionView>,
    headers: HeaderMap,
    Form(f): Form<AdminForm>,
) -> Response {
    let fp = f.fingerprint.unwrap_or_default();
    let r = edit_admins(&st, fp.trim(), true).await;
    answer(&st, &s, &headers, Page::Server, r)
}

async fn admin_remove(
    State(st): St,
    Extension(s): Extension<SessionView>,
    headers: HeaderMap,
    Path(fp): Path<String>,
) -> Response {
    let r = edit_admins(&st, fp.trim(), false).await;
    answer(&st, &s, &headers, Page::Server, r)
}

/// Writes the admin list to `server.toml`, then tells the simulation.
async fn edit_admins(st: &AppState, fp: &str, add: bool) -> Result<String, (StatusCode, String)> {
    let who = Fingerprint::parse(fp).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let _one = st.admins_lock.lock().await;
    let path = st.config_path.clone();
    let list =
        tokio::task::spawn_blocking(move || super::admins::edit_admins(path.as_deref(), &who, add))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| (StatusCode::CONFLICT, e.to_string()))?;
    info!(fingerprint = %who, add, "admin console: admins changed in server.toml");
    run(st, AdminCmd::SetAdmins { admins: list }).await?;
    Ok(if add {
        format!("added admin {who}")
    } else {
        format!("removed admin {who}")
    })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn state(metrics_token: Option<&str>) -> Arc<AppState> {
        let (_tx, snapshots) = super::super::snapshot::channel();
        state_with(metrics_token, snapshots, Default::default())
    }

    fn state_with(
        metrics_token: Option<&str>,
        snapshots: tokio::sync::watch::Receiver<Arc<super::super::snapshot::Snapshot>>,
        mirrors: crate::mirror_check::Target,
    ) -> Arc<AppState> {
        let (inbound, _rx) = mpsc::channel(8);
        Arc::new(AppState {
            snapshots,
            inbound,
            sessions: Sessions::default(),
            limiter: LoginLimiter::default(),
            token_path: PathBuf::from("/nonexistent/admin-token"),
            metrics_token: metrics_token.map(str::to_string),
            prometheus: super::super::metrics::install(),
            secure_cookie: false,
            logs_dir: PathBuf::from("/nonexistent"),
            config_rows: Vec::new(),
            config_path: None,
            admins_lock: tokio::sync::Mutex::new(()),
            mirrors,
            mirror_check_running: Default::default(),
        })
    }

    async fn get(app: &Router, auth: Option<&str>) -> StatusCode {
        let mut req = axum::http::Request::get("/metrics");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        res.status()
    }

    #[tokio::test]
    async fn metrics_off_loopback_need_the_bearer_token() {
        let app = router(state(Some("s3cret")));
        assert_eq!(get(&app, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            get(&app, Some("Bearer nope")).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(&app, Some("Basic s3cret")).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(get(&app, Some("Bearer s3cret")).await, StatusCode::OK);
        let open = router(state(None));
        assert_eq!(get(&open, None).await, StatusCode::OK);
    }

    /// What "Check the mirrors now" answers (as the console's script asks).
    async fn ask_check(st: &Arc<AppState>) -> String {
        let who = SessionView {
            id: "s".into(),
            csrf: "c".into(),
            token: [0; 32],
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-csrf-token", "c".parse().unwrap());
        let res = check_mirrors(State(st.clone()), Extension(who), headers).await;
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["message"].as_str().unwrap().to_owned()
    }

    /// Pressing the button again while a check runs starts no second one;
    /// once it ends (here: the mirror hangs up) the result is kept for the
    /// Server page and the button starts a new check.
    #[tokio::test]
    async fn one_mirror_check_runs_at_a_time_and_its_result_is_kept() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mirror = format!("http://{}/", listener.local_addr().unwrap());
        let (hang_up, hung_up) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            // The first request is held unanswered until `hang_up`.
            let (mut held, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = held.read(&mut buf).await;
            let _ = hung_up.await;
        });
        let row = super::super::snapshot::PluginRow {
            name: "p".into(),
            state: "loaded",
            version: "1".into(),
            hash: String::new(),
            errors: 0,
            restarts: 0,
            worker_pid: None,
            last_error: None,
            bundle_bytes: Some(10),
            bundle_file: Some("aa.bundle".into()),
            rpc_names: Vec::new(),
        };
        let snap = super::super::snapshot::Snapshot {
            plugins: vec![row],
            ..Default::default()
        };
        let (_tx, snapshots) = tokio::sync::watch::channel(Arc::new(snap));
        let target = crate::mirror_check::Target {
            mirrors: vec![mirror.clone()],
            ..Default::default()
        };
        let st = state_with(None, snapshots, target);
        assert!(
            ask_check(&st)
                .await
                .starts_with("checking the asset mirrors")
        );
        assert_eq!(
            ask_check(&st).await,
            "a check of the asset mirrors is already running"
        );
        assert!(st.mirrors.last.get().is_none(), "nothing finished yet");
        drop(hang_up);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while st
            .mirror_check_running
            .load(std::sync::atomic::Ordering::Acquire)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the check never ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let last = st.mirrors.last.get().expect("the finished check is kept");
        assert_eq!(last.rows.len(), 1);
        assert_eq!(last.rows[0].0, mirror);
        assert!(last.rows[0].1.contains("aa.bundle (p)"), "{:?}", last.rows);
        assert!(
            ask_check(&st)
                .await
                .starts_with("checking the asset mirrors")
        );
    }
}

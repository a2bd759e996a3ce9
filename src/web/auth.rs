//! Who is calling: a server-side session (cookie `lanai_session`, for the
//! browser) or HTTP Basic (for API clients). Session requests that change
//! state must carry the session's CSRF token (header `X-CSRF-Token` or form
//! field `csrf`) and an Origin/Referer naming this very host:port; Basic
//! requests carry no ambient credential, so the password is enough.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use base64::Engine;
use serde::Deserialize;

use super::{ApiError, ClientAddr, Web, MAX_BODY};

pub const COOKIE: &str = "lanai_session";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(30);

/// The authenticated caller, in the request extensions of protected routes.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub name: String,
    /// The session's CSRF token (pages put it in forms); None for Basic.
    pub csrf: Option<String>,
    pub session_id: Option<String>,
}

impl CurrentUser {
    /// Where a change made by this caller comes from, for the revision log.
    pub fn origin(&self) -> crate::store::Origin {
        if self.session_id.is_some() {
            crate::store::Origin::Console
        } else {
            crate::store::Origin::Api
        }
    }
}

/// Per-address failed logins.
#[derive(Debug, Default, Clone, Copy)]
pub struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Login rate limiting: after `MAX_FAILURES` failures in a row an address
/// is refused for `LOCKOUT`, even with the right password (that is the point).
#[derive(Default)]
pub struct LoginLimiter {
    map: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginLimiter {
    /// Seconds left if `ip` is locked out.
    pub fn locked(&self, ip: IpAddr) -> Option<u64> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let until = map.get(&ip)?.locked_until?;
        let now = Instant::now();
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    pub fn failure(&self, ip: IpAddr) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Bound memory under a spray of addresses: forget the oldest state wholesale.
        if map.len() > 10_000 {
            map.clear();
        }
        let f = map.entry(ip).or_default();
        if f.locked_until.is_some_and(|t| t <= Instant::now()) {
            *f = Failures::default();
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.locked_until = Some(Instant::now() + LOCKOUT);
        }
    }

    pub fn success(&self, ip: IpAddr) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }
}

pub fn public_routes() -> Router<Web> {
    Router::new().route("/login", get(login_page).post(login)).route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: String,
}

fn render_login(status: StatusCode, error: &str) -> Response {
    match (LoginPage { error: error.to_string() }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("template: {e}")).into_response(),
    }
}

async fn login_page(State(web): State<Web>, headers: HeaderMap) -> Response {
    // Already logged in (e.g. the browser's back button): straight to the console.
    if let Some(id) = session_cookie(&headers) {
        if let Ok(Some(s)) = web.app.store.session(&id).await {
            if s.expires_at > std::time::SystemTime::now() {
                return Redirect::to("/").into_response();
            }
        }
    }
    render_login(StatusCode::OK, "")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn client_ip(req_ext: Option<&ClientAddr>) -> IpAddr {
    req_ext.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

async fn login(
    State(web): State<Web>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<LoginForm>,
) -> Response {
    // Login CSRF: a foreign page must not log the browser into our console.
    if !same_origin(&headers, &uri) {
        return render_login(StatusCode::FORBIDDEN, "Request refused: cross-origin login");
    }
    let ip = client_ip(client.as_deref());
    if let Some(secs) = web.limiter.locked(ip) {
        return render_login(StatusCode::TOO_MANY_REQUESTS, &format!("Too many failures; retry in {secs} s"));
    }
    match web.app.store.verify_password(&form.username, &form.password).await {
        Ok(true) => {}
        Ok(false) => {
            web.limiter.failure(ip);
            tracing::warn!(%ip, user = %form.username, "console login failed");
            return render_login(StatusCode::UNAUTHORIZED, "Wrong user name or password");
        }
        Err(e) => return render_login(StatusCode::INTERNAL_SERVER_ERROR, &format!("store: {e}")),
    }
    web.limiter.success(ip);
    let session = match web.app.store.create_session(&form.username, SESSION_TTL).await {
        Ok(s) => s,
        Err(e) => return render_login(StatusCode::INTERNAL_SERVER_ERROR, &format!("store: {e}")),
    };
    let _ = web.app.store.audit(&form.username, "login", &format!("from {ip}")).await;
    ([(header::SET_COOKIE, set_cookie(&session.id))], Redirect::to("/")).into_response()
}

/// The `Set-Cookie` value for a session id.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_TTL.as_secs())
}

/// A new session for `user`, as the CurrentUser its pages are rendered for.
pub async fn new_session(web: &Web, user: &str) -> Result<CurrentUser, crate::store::StoreError> {
    let s = web.app.store.create_session(user, SESSION_TTL).await?;
    Ok(CurrentUser { name: s.user, csrf: Some(s.csrf_token), session_id: Some(s.id) })
}

async fn logout(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    // Logging out is harmless, but only our own pages may do it.
    if let (Some(id), true) = (session_cookie(&headers), same_origin(&headers, &uri)) {
        let _ = web.app.store.delete_session(&id).await;
    }
    let clear = format!("{COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

/// The session id from the `Cookie` header(s), if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Authorization: Basic` credentials.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// host:port of an `Origin` or `Referer` URL (`https://h:p/...`).
fn url_authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether the request's Origin (or, without one, Referer) is this console:
/// same host:port as the Host header. Neither header: refused.
/// HTTP/2 carries the host in the `:authority` pseudo-header (the URI), not `Host`.
pub fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.as_str().to_string()));
    let Some(host) = host else { return false };
    let claimed = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin.to_string(),
        None => match headers.get(header::REFERER).and_then(|v| v.to_str().ok()) {
            Some(referer) => referer.to_string(),
            None => return false,
        },
    };
    if !claimed.starts_with("https://") {
        return false;
    }
    url_authority(&claimed).is_some_and(|a| a.eq_ignore_ascii_case(&host))
}

/// Whether a browser says this request comes from another site.
fn cross_site(headers: &HeaderMap, uri: &Uri) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|v| v == "cross-site" || v == "same-site") {
        return true;
    }
    let has_origin = headers.contains_key(header::ORIGIN) || headers.contains_key(header::REFERER);
    has_origin && !same_origin(headers, uri)
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/api/") || req.uri().path() == "/api"
}

fn unauthenticated(api: bool, message: &str) -> Response {
    if api {
        let mut res = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"lanai\", charset=\"UTF-8\""),
        );
        res
    } else {
        // 302 like most consoles; browsers follow it with a GET.
        (StatusCode::FOUND, [(header::LOCATION, "/login")]).into_response()
    }
}

fn forbidden(api: bool, message: &str) -> Response {
    if api {
        ApiError::new(StatusCode::FORBIDDEN, message).into_response()
    } else {
        (StatusCode::FORBIDDEN, message.to_string()).into_response()
    }
}

/// The CSRF token a form carries as field `csrf` (form bodies only; the
/// body is buffered and handed on unchanged).
async fn form_token(req: Request) -> Result<(Request, Option<String>), Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let token = bytes
        .split(|b| *b == b'&')
        .filter_map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            Some((it.next()?, it.next()?))
        })
        .find(|(k, _)| *k == b"csrf")
        .and_then(|(_, v)| std::str::from_utf8(v).ok().map(str::to_string));
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// Middleware for everything but the login page and static files.
pub async fn require_login(State(web): State<Web>, req: Request, next: Next) -> Response {
    let api = is_api(&req);
    let ip = client_ip(req.extensions().get::<ClientAddr>());
    if let Some(id) = session_cookie(req.headers()) {
        match web.app.store.session(&id).await {
            Ok(Some(session)) if session.expires_at > std::time::SystemTime::now() => {
                let mut req = req;
                if is_state_changing(req.method()) {
                    if !same_origin(req.headers(), req.uri()) {
                        return forbidden(api, "cross-origin request refused (Origin/Referer)");
                    }
                    let header_token =
                        req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let token = match header_token {
                        Some(t) => Some(t),
                        None => match form_token(req).await {
                            Ok((r, t)) => {
                                req = r;
                                t
                            }
                            Err(res) => return res,
                        },
                    };
                    let ok =
                        token.is_some_and(|t| constant_time_eq(t.as_bytes(), session.csrf_token.as_bytes()));
                    if !ok {
                        return forbidden(api, "missing or wrong CSRF token");
                    }
                }
                req.extensions_mut().insert(CurrentUser {
                    name: session.user.clone(),
                    csrf: Some(session.csrf_token.clone()),
                    session_id: Some(session.id.clone()),
                });
                return next.run(req).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!("session lookup: {e}");
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "session store unavailable")
                    .into_response();
            }
        }
    }
    // Basic is for API clients. A browser that was once given Basic
    // credentials (it prompts on our 401) sends them by itself, even on a
    // request a foreign page makes: such a request carries a foreign Origin
    // (or Sec-Fetch-Site: cross-site) and is refused; API clients send neither.
    if let (true, Some((user, password))) = (api, basic_credentials(req.headers())) {
        if is_state_changing(req.method()) && cross_site(req.headers(), req.uri()) {
            return forbidden(true, "cross-origin request refused (Origin/Referer)");
        }
        if let Some(secs) = web.limiter.locked(ip) {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed logins; retry in {secs} s"),
            )
            .into_response();
        }
        match web.app.store.verify_password(&user, &password).await {
            Ok(true) => {
                web.limiter.success(ip);
                let mut req = req;
                req.extensions_mut().insert(CurrentUser { name: user, csrf: None, session_id: None });
                return next.run(req).await;
            }
            Ok(false) => {
                web.limiter.failure(ip);
                tracing::warn!(%ip, %user, "API login failed");
                return unauthenticated(true, "wrong user name or password");
            }
            Err(e) => {
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
                    .into_response()
            }
        }
    }
    unauthenticated(api, "authentication required (HTTP Basic or session)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn origin_must_match_host_and_port() {
        let same_origin = |h: &HeaderMap| super::same_origin(h, &Uri::from_static("/"));
        assert!(same_origin(&headers(&[("host", "a:4444"), ("origin", "https://a:4444")])));
        assert!(!same_origin(&headers(&[("host", "a:4444"), ("origin", "https://a:4445")])));
        assert!(!same_origin(&headers(&[("host", "a:4444"), ("origin", "https://evil")])));
        assert!(!same_origin(&headers(&[("host", "a:4444"), ("origin", "http://a:4444")])));
        assert!(same_origin(&headers(&[("host", "a:4444"), ("referer", "https://a:4444/setup?x")])));
        assert!(!same_origin(&headers(&[("host", "a:4444")])));
    }

    #[test]
    fn cookie_and_basic_parsing() {
        let h = headers(&[("cookie", "x=1; lanai_session=abc; y=2")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        let h = headers(&[("authorization", "Basic YWRtaW46cHc6eA==")]);
        assert_eq!(basic_credentials(&h), Some(("admin".into(), "pw:x".into())));
        assert_eq!(basic_credentials(&headers(&[("authorization", "Basic !!!")])), None);
    }

    #[test]
    fn lockout_after_five_failures() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..4 {
            l.failure(ip);
        }
        assert!(l.locked(ip).is_none());
        l.failure(ip);
        assert!(l.locked(ip).is_some());
        assert!(l.locked(IpAddr::from([10, 0, 0, 2])).is_none());
    }
}

#[cfg(test)]
mod h2_tests {
    use super::*;

    #[test]
    fn cross_site_needs_a_browser_signal() {
        let uri = Uri::from_static("/api/config/save");
        let mut h = HeaderMap::new();
        h.insert(header::HOST, header::HeaderValue::from_static("a:1"));
        assert!(!cross_site(&h, &uri), "curl sends neither Origin nor Sec-Fetch-Site");
        h.insert(header::ORIGIN, header::HeaderValue::from_static("https://a:1"));
        assert!(!cross_site(&h, &uri));
        h.insert("sec-fetch-site", header::HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h, &uri));
        h.remove("sec-fetch-site");
        h.insert(header::ORIGIN, header::HeaderValue::from_static("https://evil"));
        assert!(cross_site(&h, &uri));
    }

    #[test]
    fn authority_stands_in_for_host() {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, header::HeaderValue::from_static("https://a:1"));
        assert!(same_origin(&h, &"https://a:1/x".parse::<Uri>().expect("uri")));
        assert!(!same_origin(&h, &"https://b:1/x".parse::<Uri>().expect("uri")));
    }
}

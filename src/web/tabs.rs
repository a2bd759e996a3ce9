//! The Services and Setup tabs.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::auth::CurrentUser;
use super::pages::{render, Chrome};
use super::Web;
use crate::appliance::pipeline::Action;
use crate::appliance::{power, services};
use crate::store::StoreError;

/// One service row as the ALOHA Services tab shows it.
pub struct ServiceRow {
    pub name: String,
    pub status: String,
    /// Indicator colour class: `up` (green), `wait` (orange: starting or
    /// restarting after a crash), `down` (red), `off` (grey: not run here).
    pub indicator: &'static str,
    pub pid: String,
    pub autostart: bool,
    pub log: String,
    pub editor: String,
    /// The service's own file, opened by Edit Configuration.
    pub file: &'static str,
    /// False for the network service without `--manage-network`.
    pub managed: bool,
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    chrome: Chrome,
    rows: Vec<ServiceRow>,
    error: String,
    /// ALOHA's [advanced mode]: Edit Configuration of each service's own file.
    advanced: bool,
}

#[derive(Deserialize)]
pub struct ServicesQuery {
    #[serde(default)]
    advanced: Option<String>,
}

pub async fn services_page(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Query(query): Query<ServicesQuery>,
) -> Response {
    let advanced = query.advanced.is_some_and(|v| v != "0");
    let chrome = Chrome::new(&web, &user, "services").await;
    let (rows, error) = match web.app.services().await {
        Ok(list) => (
            list.into_iter()
                .map(|s| {
                    let log = web
                        .app
                        .supervisor
                        .logs(&s.name, 50)
                        .map(|lines| lines.into_iter().map(|l| l.text).collect::<Vec<_>>().join("\n"))
                        .unwrap_or_default();
                    let editor = if s.name == "haproxy" {
                        "/layer7".to_string()
                    } else {
                        format!("/services/{}/edit", s.name)
                    };
                    ServiceRow {
                        managed: s.status != "unmanaged",
                        indicator: match s.status.as_str() {
                            "running" => "up",
                            "starting" | "restarting" => "wait",
                            "unmanaged" => "off",
                            _ => "down",
                        },
                        pid: s.pid.map_or(String::new(), |p| p.to_string()),
                        status: s.status,
                        autostart: s.autostart,
                        log,
                        editor,
                        file: services::by_name(&s.name).map_or("", |k| k.file),
                        name: s.name,
                    }
                })
                .collect(),
            String::new(),
        ),
        Err(e) => (Vec::new(), format!("store: {e}")),
    };
    render(ServicesPage { chrome, rows, error, advanced })
}

#[derive(Deserialize)]
pub struct ControlForm {
    action: String,
}

pub async fn control(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path(name): Path<String>,
    Form(form): Form<ControlForm>,
) -> Response {
    if services::by_name(&name).is_none() {
        return (StatusCode::NOT_FOUND, format!("unknown service '{name}'")).into_response();
    }
    let Some(action) = Action::parse(&form.action) else {
        return (StatusCode::BAD_REQUEST, format!("unknown action '{}'", form.action)).into_response();
    };
    match web.app.control(&name, action, &user.name).await {
        Ok(()) => Redirect::to("/services").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{name}: {} failed: {e}", action.as_str()))
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    chrome: Chrome,
    message: String,
    error: String,
    audit: Vec<AuditRow>,
    reboot_available: bool,
}

/// One line of the audit log as Setup shows it.
pub struct AuditRow {
    pub time: String,
    pub user: String,
    pub action: String,
    pub detail: String,
}

async fn setup(web: &Web, user: &CurrentUser, message: String, error: String) -> Response {
    let chrome = Chrome::new(web, user, "setup").await;
    let audit = match web.app.store.audit_log(30).await {
        Ok(entries) => entries
            .into_iter()
            .map(|e| AuditRow {
                time: httpdate::fmt_http_date(e.at),
                user: e.user,
                action: e.action,
                detail: e.detail,
            })
            .collect(),
        Err(e) => {
            tracing::warn!("audit log: {e}");
            Vec::new()
        }
    };
    render(SetupPage { chrome, message, error, audit, reboot_available: power::reboot_available() })
}

pub async fn setup_page(State(web): State<Web>, Extension(user): Extension<CurrentUser>) -> Response {
    setup(&web, &user, String::new(), String::new()).await
}

pub async fn save(State(web): State<Web>, Extension(user): Extension<CurrentUser>) -> Response {
    match web.app.save(&user.name).await {
        Ok(saved) if saved.is_empty() => {
            setup(&web, &user, "Nothing to save: running is saved".into(), String::new()).await
        }
        Ok(saved) => setup(&web, &user, format!("Saved: {}", saved.join(", ")), String::new()).await,
        Err(e) => setup(&web, &user, String::new(), format!("Save failed: {e}")).await,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    old: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

pub async fn password(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Form(form): Form<PasswordForm>,
) -> Response {
    if form.new != form.confirm {
        return setup(&web, &user, String::new(), "The new passwords differ".into()).await;
    }
    if form.new.chars().count() < 8 {
        return setup(&web, &user, String::new(), "The new password needs at least 8 characters".into())
            .await;
    }
    match web.app.store.set_password(&user.name, &form.old, &form.new).await {
        Ok(()) => password_changed(&web, &user).await,
        Err(StoreError::WrongPassword) => {
            setup(&web, &user, String::new(), "The current password is wrong".into()).await
        }
        Err(e) => setup(&web, &user, String::new(), format!("Password change failed: {e}")).await,
    }
}

/// Every session of the user ends (a stolen cookie stops working with the old
/// password); a Basic caller has none, a browser gets a fresh one.
async fn password_changed(web: &Web, user: &CurrentUser) -> Response {
    if let Err(e) = web.app.store.delete_user_sessions(&user.name).await {
        tracing::warn!("ending {}'s sessions: {e}", user.name);
    }
    if user.session_id.is_none() {
        return setup(web, user, "Password changed".into(), String::new()).await;
    }
    match super::auth::new_session(web, &user.name).await {
        Ok(fresh) => {
            let cookie = super::auth::set_cookie(fresh.session_id.as_deref().unwrap_or_default());
            let page =
                setup(web, &fresh, "Password changed; other sessions were logged out".into(), String::new());
            ([(axum::http::header::SET_COOKIE, cookie)], page.await).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("new session: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
pub struct RebootForm {
    #[serde(default)]
    confirm: String,
}

pub async fn reboot(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Form(form): Form<RebootForm>,
) -> Response {
    if form.confirm != "yes" {
        return setup(&web, &user, String::new(), "Tick the box to confirm the reboot".into()).await;
    }
    let _ = web.app.store.audit(&user.name, "reboot", "requested").await;
    match power::reboot_soon() {
        Ok(()) => {
            setup(&web, &user, "Rebooting: the console is back in a few seconds".into(), String::new()).await
        }
        Err(e) => setup(&web, &user, String::new(), e).await,
    }
}

//! Console pages: the common chrome (tabs, unsaved indicator, CSRF token),
//! the configuration editor (LB Layer7 and each service's page), and the
//! routes of every tab. Services and Setup live in `tabs`.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::auth::CurrentUser;
use super::{admin, tabs, Web};
use crate::appliance::pipeline::Which;
use crate::appliance::services;

/// What every page's layout needs.
pub struct Chrome {
    pub user: String,
    pub csrf: String,
    pub tab: &'static str,
    /// Services whose running configuration is not the saved one.
    pub unsaved: Vec<String>,
}

impl Chrome {
    pub async fn new(web: &Web, user: &CurrentUser, tab: &'static str) -> Chrome {
        let unsaved = web.app.store.unsaved_services().await.unwrap_or_else(|e| {
            tracing::warn!("unsaved services: {e}");
            Vec::new()
        });
        Chrome { user: user.name.clone(), csrf: user.csrf.clone().unwrap_or_default(), tab, unsaved }
    }

    pub fn unsaved_list(&self) -> String {
        self.unsaved.join(", ")
    }
}

pub fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("template: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/layer7") }))
        .route("/layer7", get(layer7))
        .route("/admin", get(admin::page))
        .route("/admin/server", post(admin::post_server))
        .route("/services", get(tabs::services_page))
        .route("/services/{name}/edit", get(service_editor))
        .route("/services/{name}/setup", get(setup_editor))
        .route("/services/{name}/control", post(tabs::control))
        .route("/setup", get(tabs::setup_page))
        .route("/setup/save", post(tabs::save))
        .route("/setup/password", post(tabs::password))
        .route("/setup/reboot", post(tabs::reboot))
}

/// One row of the history list.
pub struct HistoryRow {
    pub id: i64,
    pub origin: String,
    pub author: String,
    pub time: String,
    pub running: bool,
    pub saved: bool,
}

#[derive(Template)]
#[template(path = "editor.html")]
struct EditorPage {
    chrome: Chrome,
    service: String,
    title: String,
    file: String,
    text: String,
    history: Vec<HistoryRow>,
    /// Where Check/Diff/Apply go (`/api/services/NAME` or its `/setup`).
    api_base: String,
    show_history: bool,
    intro: String,
}

async fn editor(web: &Web, user: &CurrentUser, service: &str, tab: &'static str) -> Response {
    let Some(kind) = services::by_name(service) else {
        return (StatusCode::NOT_FOUND, format!("unknown service '{service}'")).into_response();
    };
    let chrome = Chrome::new(web, user, tab).await;
    let text = match web.app.config(kind.name, Which::Running).await {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let history = match web.app.revisions(kind.name, 50).await {
        Ok(list) => list
            .into_iter()
            .map(|r| HistoryRow {
                id: r.id.0,
                origin: r.origin.as_str().to_string(),
                author: r.author,
                time: httpdate::fmt_http_date(r.created_at),
                running: r.is_running,
                saved: r.is_saved,
            })
            .collect(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let title =
        if kind.name == "haproxy" { "LB Layer7".to_string() } else { format!("Service {}", kind.name) };
    render(EditorPage {
        chrome,
        service: kind.name.to_string(),
        title,
        file: kind.file.to_string(),
        text,
        history,
        api_base: format!("/api/services/{}", kind.name),
        show_history: true,
        intro: String::new(),
    })
}

async fn layer7(State(web): State<Web>, Extension(user): Extension<CurrentUser>) -> Response {
    editor(&web, &user, "haproxy", "layer7").await
}

async fn service_editor(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path(name): Path<String>,
) -> Response {
    if name == "haproxy" {
        return Redirect::to("/layer7").into_response();
    }
    editor(&web, &user, &name, "services").await
}

/// The setup editor: this service's `service NAME` blocks of config.rc.
async fn setup_editor(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path(name): Path<String>,
) -> Response {
    let text = match web.app.setup_text(&name).await {
        Ok(t) => t,
        Err(crate::appliance::ApplyError::UnknownService(_)) => {
            return (StatusCode::NOT_FOUND, format!("unknown service '{name}'")).into_response()
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let chrome = Chrome::new(&web, &user, "services").await;
    let intro = if name == "network" {
        "The interfaces of config.rc: 'service network IF' blocks with 'ip address ADDR/LEN|dhcp', \
         'ip route DEST|default GW', 'mtu N', 'auto on|off', 'type dummy'; IF.ID is a VLAN."
    } else {
        "This service's block of config.rc. 'no autostart' keeps it stopped at boot."
    };
    render(EditorPage {
        chrome,
        service: name.clone(),
        title: format!("Setup: {name}"),
        file: "config.rc".into(),
        text,
        history: Vec::new(),
        api_base: format!("/api/services/{name}/setup"),
        show_history: false,
        intro: intro.into(),
    })
}

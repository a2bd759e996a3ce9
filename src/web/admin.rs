//! LB Admin: frontends, backends and servers live from the data plane's
//! runtime API, with enable/disable/drain per server.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::CurrentUser;
use super::pages::{render, Chrome};
use super::stat::{self, StatRow};
use super::{ApiError, Web};

/// The runtime command for an operator action on a server.
fn command(op: &str, backend: &str, server: &str) -> Option<String> {
    let target = format!("{backend}/{server}");
    Some(match op {
        "enable" => format!("enable server {target}"),
        "disable" => format!("disable server {target}"),
        "drain" => format!("set server {target} state drain"),
        "ready" => format!("set server {target} state ready"),
        "maint" => format!("set server {target} state maint"),
        _ => return None,
    })
}

async fn rows(web: &Web) -> Result<Vec<StatRow>, String> {
    Ok(stat::parse(&web.app.runtime_command("show stat").await?))
}

/// Validates the names against `show stat` (never passes arbitrary text to
/// the runtime API), runs the command, audits it.
async fn server_action(
    web: &Web,
    user: &CurrentUser,
    backend: &str,
    server: &str,
    op: &str,
) -> Result<String, ApiError> {
    let Some(cmd) = command(op, backend, server) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown server action '{op}'")));
    };
    let rows = rows(web).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    if !stat::has_server(&rows, backend, server) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no server {backend}/{server}")));
    }
    let answer =
        web.app.runtime_command(&cmd).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let _ = web.app.store.audit(&user.name, "lb.server", &format!("{cmd}: {}", answer.trim())).await;
    Ok(answer)
}

pub async fn api_stat(State(web): State<Web>) -> Result<Response, ApiError> {
    let rows = rows(&web).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    Ok(Json(rows).into_response())
}

pub async fn api_server(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path((backend, server, op)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let answer = server_action(&web, &user, &backend, &server, &op).await?;
    Ok(Json(json!({ "ok": true, "answer": answer.trim() })).into_response())
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    rows: Vec<StatRow>,
    error: String,
}

pub async fn page(State(web): State<Web>, Extension(user): Extension<CurrentUser>) -> Response {
    let chrome = Chrome::new(&web, &user, "admin").await;
    let (rows, error) = match rows(&web).await {
        Ok(rows) => (rows, String::new()),
        Err(e) => (Vec::new(), e),
    };
    render(AdminPage { chrome, rows, error })
}

#[derive(Deserialize)]
pub struct ServerForm {
    backend: String,
    server: String,
    op: String,
}

pub async fn post_server(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Form(form): Form<ServerForm>,
) -> Response {
    match server_action(&web, &user, &form.backend, &form.server, &form.op).await {
        Ok(_) => Redirect::to("/admin").into_response(),
        Err(ApiError(status, message)) => (status, message).into_response(),
    }
}

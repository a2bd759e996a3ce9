//! JSON API of the Services tab's setup editor (a service's `service NAME`
//! blocks of config.rc) and of the reboot button.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;

use super::api::{apply_error, apply_response_reporting, diagnostics_json, text_body};
use super::auth::CurrentUser;
use super::{diff, ApiError, Web};
use crate::appliance::pipeline::Which;
use crate::appliance::power;
use crate::conf::has_errors;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/services/{name}/setup", get(get_setup))
        .route("/services/{name}/setup/check", post(check))
        .route("/services/{name}/setup/diff", post(diff_running))
        .route("/services/{name}/setup/apply", post(apply))
        .route("/system/reboot", post(reboot))
}

type ApiResult = Result<Response, ApiError>;

async fn get_setup(State(web): State<Web>, Path(name): Path<String>) -> ApiResult {
    let text = web.app.setup_text(&name).await.map_err(apply_error)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn check(State(web): State<Web>, Path(name): Path<String>, body: Body) -> ApiResult {
    let text = text_body(body).await?;
    let diags = web.app.setup_check(&name, &text).await.map_err(apply_error)?;
    let ok = !has_errors(&diags);
    let status = if ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let mut body = json!({ "ok": ok, "diagnostics": diagnostics_json(&diags) });
    if !ok {
        body["error"] = "invalid configuration".into();
    }
    Ok((status, Json(body)).into_response())
}

/// The diff is of the whole config.rc: the setup text changes that file.
async fn diff_running(State(web): State<Web>, Path(name): Path<String>, body: Body) -> ApiResult {
    let text = text_body(body).await?;
    let edited = web.app.setup_whole(&name, &text).await.map_err(apply_error)?;
    let current = web.app.config("network", Which::Running).await.map_err(apply_error)?.unwrap_or_default();
    Ok(Json(json!({ "diff": diff::unified(&current, &edited, "config.rc", "edited") })).into_response())
}

async fn apply(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult {
    let text = text_body(body).await?;
    Ok(apply_response_reporting(web.app.setup_apply(&name, &text, user.origin(), &user.name).await))
}

async fn reboot(State(web): State<Web>, Extension(user): Extension<CurrentUser>) -> ApiResult {
    if !power::reboot_available() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "reboot is only available in the Lanai appliance image (under its busybox init)",
        ));
    }
    let _ = web.app.store.audit(&user.name, "reboot", "requested").await;
    power::reboot_soon().map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "rebooting": true }))).into_response())
}

//! The JSON API (README "JSON API"): the same pipeline as the console.
//! Text bodies are limited to `MAX_BODY` (413 JSON); every error is
//! `{"error": "..."}`.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::CurrentUser;
use super::{diff, ApiError, Web, MAX_BODY};
use crate::appliance::pipeline::{Action, Which};
use crate::appliance::services;
use crate::appliance::ApplyError;
use crate::conf::{Diagnostic, Severity};
use crate::store::{Origin, RevisionId};

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/services", get(list_services))
        .route("/services/{name}/config", get(get_config))
        .route("/services/{name}/check", post(check))
        .route("/services/{name}/apply", post(apply))
        .route("/services/{name}/diff", post(diff_running))
        .route("/services/{name}/revisions", get(revisions))
        .route("/services/{name}/revisions/{id}", get(revision))
        .route("/services/{name}/revisions/{id}/restore", post(restore_revision))
        .route("/services/{name}/{action}", post(control))
        .route("/config/save", post(save))
        .route("/backup", get(backup))
        .route("/restore", post(restore))
        .route("/lb/stat", get(super::admin::api_stat))
        .route("/lb/servers/{backend}/{server}/{op}", post(super::admin::api_server))
        .merge(super::setup_api::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
}

type ApiResult = Result<Response, ApiError>;

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
}

fn known(name: &str) -> Result<(), ApiError> {
    match services::by_name(name) {
        Some(_) => Ok(()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown service '{name}'"))),
    }
}

/// Reads a text body: at most `MAX_BODY` bytes of UTF-8.
pub async fn text_body(body: Body) -> Result<String, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {MAX_BODY} bytes"))
    })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "body is not UTF-8 text"))
}

#[derive(Serialize)]
pub struct DiagnosticJson {
    pub line: usize,
    pub message: String,
    pub severity: &'static str,
}

pub fn diagnostics_json(diags: &[Diagnostic]) -> Vec<DiagnosticJson> {
    diags
        .iter()
        .map(|d| DiagnosticJson {
            line: d.line,
            message: d.message.clone(),
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
        })
        .collect()
}

fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

/// How an `ApplyError` is answered.
pub fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::UnknownService(s) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("unknown service '{s}'"))
        }
        // Callers turn Invalid into the 422 diagnostics body themselves.
        ApplyError::Invalid(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid configuration"),
        ApplyError::Failed { error, .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error),
        ApplyError::Store(e) => store_error(e),
    }
}

/// The answer to an apply: 200 `{"revision"}`, 422 with diagnostics, 500
/// `{"error","restored"}`.
pub fn apply_response(result: Result<RevisionId, ApplyError>) -> Response {
    apply_response_reporting(result.map(|rev| (rev, Vec::new())))
}

/// As [`apply_response`], with what the service reported: `200
/// {"revision","warnings":[...]}`.
pub fn apply_response_reporting(result: Result<(RevisionId, Vec<String>), ApplyError>) -> Response {
    match result {
        Ok((rev, warnings)) => Json(json!({ "revision": rev.0, "warnings": warnings })).into_response(),
        Err(ApplyError::Invalid(diags)) => invalid(&diags),
        Err(ApplyError::Failed { error, restored }) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": error, "restored": restored })))
                .into_response()
        }
        Err(e) => apply_error(e).into_response(),
    }
}

fn invalid(diags: &[Diagnostic]) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(
            json!({ "ok": false, "error": "invalid configuration", "diagnostics": diagnostics_json(diags) }),
        ),
    )
        .into_response()
}

async fn list_services(State(web): State<Web>) -> ApiResult {
    let list = web.app.services().await.map_err(store_error)?;
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
struct WhichQuery {
    which: Option<String>,
}

async fn get_config(
    State(web): State<Web>,
    Path(name): Path<String>,
    Query(q): Query<WhichQuery>,
) -> ApiResult {
    known(&name)?;
    let which = match q.which.as_deref() {
        None | Some("running") => Which::Running,
        Some("saved") => Which::Saved,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("which={other}: expected running or saved"),
            ))
        }
    };
    let text = web.app.config(&name, which).await.map_err(apply_error)?.unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn check(State(web): State<Web>, Path(name): Path<String>, body: Body) -> ApiResult {
    known(&name)?;
    let text = text_body(body).await?;
    let diags = web.app.check(&name, &text).map_err(apply_error)?;
    if has_errors(&diags) {
        return Ok(invalid(&diags));
    }
    Ok(Json(json!({ "ok": true, "diagnostics": diagnostics_json(&diags) })).into_response())
}

async fn apply(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult {
    known(&name)?;
    let text = text_body(body).await?;
    Ok(apply_response_reporting(web.app.apply_reporting(&name, &text, user.origin(), &user.name).await))
}

async fn diff_running(State(web): State<Web>, Path(name): Path<String>, body: Body) -> ApiResult {
    known(&name)?;
    let text = text_body(body).await?;
    let running = web.app.config(&name, Which::Running).await.map_err(apply_error)?.unwrap_or_default();
    Ok(Json(json!({ "diff": diff::unified(&running, &text, "running", "edited") })).into_response())
}

async fn control(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path((name, action)): Path<(String, String)>,
) -> ApiResult {
    known(&name)?;
    let Some(action) = Action::parse(&action) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown action '{action}'")));
    };
    if name == services::NETWORK.name && !web.app.options().manage_network {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the network service is not managed here: lanai run was started without --manage-network",
        ));
    }
    web.app
        .control(&name, action, &user.name)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(json!({ "ok": true, "service": name, "action": action.as_str() })).into_response())
}

#[derive(Serialize)]
struct RevisionJson {
    id: i64,
    origin: String,
    author: String,
    /// Seconds since the Unix epoch.
    created_at: u64,
    running: bool,
    saved: bool,
}

async fn revisions(State(web): State<Web>, Path(name): Path<String>) -> ApiResult {
    known(&name)?;
    let list = web.app.revisions(&name, 200).await.map_err(apply_error)?;
    let out: Vec<RevisionJson> = list
        .into_iter()
        .map(|r| RevisionJson {
            id: r.id.0,
            origin: r.origin.as_str().to_string(),
            author: r.author,
            created_at: r.created_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            running: r.is_running,
            saved: r.is_saved,
        })
        .collect();
    Ok(Json(out).into_response())
}

fn parse_id(id: &str) -> Result<RevisionId, ApiError> {
    id.parse::<i64>()
        .map(RevisionId)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("'{id}' is not a revision number")))
}

/// The text of one revision of `name`, 404 if it is not one of its.
async fn revision_text(web: &Web, name: &str, id: RevisionId) -> Result<String, ApiError> {
    match web.app.store.revision(id).await.map_err(store_error)? {
        Some(rev) if rev.service == name => Ok(rev.text),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, format!("{name} has no revision {id}"))),
    }
}

/// One revision: its text and its diff from the revision before it.
async fn revision(State(web): State<Web>, Path((name, id)): Path<(String, String)>) -> ApiResult {
    known(&name)?;
    let id = parse_id(&id)?;
    let text = revision_text(&web, &name, id).await?;
    let list = web.app.revisions(&name, 10_000).await.map_err(apply_error)?;
    let previous = list.iter().filter(|r| r.id < id).map(|r| r.id).max();
    let before = match previous {
        Some(p) => revision_text(&web, &name, p).await?,
        None => String::new(),
    };
    let old_name = previous.map_or("(none)".to_string(), |p| format!("revision {p}"));
    let diff = diff::unified(&before, &text, &old_name, &format!("revision {id}"));
    Ok(Json(json!({ "id": id.0, "text": text, "previous": previous.map(|p| p.0), "diff": diff }))
        .into_response())
}

async fn restore_revision(
    State(web): State<Web>,
    Extension(user): Extension<CurrentUser>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    known(&name)?;
    let id = parse_id(&id)?;
    let text = revision_text(&web, &name, id).await?;
    Ok(apply_response(web.app.apply(&name, &text, Origin::Restore, &user.name).await))
}

async fn save(State(web): State<Web>, Extension(user): Extension<CurrentUser>) -> ApiResult {
    let saved = web.app.save(&user.name).await.map_err(store_error)?;
    Ok(Json(json!({ "saved": saved })).into_response())
}

/// `{"services": {name: running text}}` as a download.
async fn backup(State(web): State<Web>) -> ApiResult {
    let texts = web.app.store.export_running().await.map_err(store_error)?;
    let services: BTreeMap<String, String> =
        texts.into_iter().filter(|(name, _)| services::by_name(name).is_some()).collect();
    let body = serde_json::to_string_pretty(&json!({ "services": services }))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"lanai-backup.json\""),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct Backup {
    pub services: BTreeMap<String, String>,
}

/// Applies every service of a backup (origin Restore); per-service results.
pub async fn restore_backup(web: &Web, user: &CurrentUser, backup: Backup) -> (bool, serde_json::Value) {
    let mut results = serde_json::Map::new();
    let mut all_ok = true;
    for (name, text) in backup.services {
        let result = match web.app.apply(&name, &text, Origin::Restore, &user.name).await {
            Ok(rev) => json!({ "ok": true, "revision": rev.0 }),
            Err(ApplyError::Invalid(diags)) => {
                json!({ "ok": false, "error": "invalid configuration", "diagnostics": diagnostics_json(&diags) })
            }
            Err(e) => json!({ "ok": false, "error": e.to_string() }),
        };
        all_ok &= result["ok"] == json!(true);
        results.insert(name, result);
    }
    (all_ok, json!({ "ok": all_ok, "services": results }))
}

async fn restore(State(web): State<Web>, Extension(user): Extension<CurrentUser>, body: Body) -> ApiResult {
    let text = text_body(body).await?;
    let backup: Backup = serde_json::from_str(&text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not a Lanai backup: {e}")))?;
    if backup.services.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "backup names no service"));
    }
    let (ok, report) = restore_backup(&web, &user, backup).await;
    let status = if ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(report)).into_response())
}

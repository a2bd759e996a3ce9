//! CSS and JS, embedded in the binary with `include_str!`: the appliance
//! image then needs no asset directory next to the binary, a console can
//! never serve assets from another version than its own code, and no file
//! system path is ever derived from a request.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Web;

const FILES: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", include_str!("../../web/static/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../../web/static/console.js")),
    ("editor.js", "text/javascript; charset=utf-8", include_str!("../../web/static/editor.js")),
];

pub fn routes() -> Router<Web> {
    Router::new().route("/static/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

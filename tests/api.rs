//! The console and JSON API of a real `lanai run` over HTTPS: the client
//! trusts only the certificate `lanai run` generated (DATA_DIR/tls/cert.pem),
//! which also checks that certificate. Every `lanai run` and its children are
//! stopped by `Appliance`'s Drop, even when a test fails.

mod support;
mod web_support;

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use support::{eventually, free_port};
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_api_endpoints_good_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), Some(PASSWORD));

    // Login required: 401 JSON for the API, 302 to /login for pages.
    let r = app.call("GET", "/api/services", &[], "").await;
    r.assert_error(401);
    assert!(r.header("www-authenticate").starts_with("Basic"), "{r:?}");
    let r = app.call("GET", "/layer7", &[], "").await;
    assert_eq!((r.status, r.header("location").as_str()), (302, "/login"));
    let r = app.call("GET", "/api/services", &[("authorization", &basic_header("admin", "wrong"))], "").await;
    r.assert_error(401);
    assert_eq!(app.call("GET", "/login", &[], "").await.status, 200);
    let r = app.call("GET", "/static/editor.js", &[], "").await;
    assert!(r.status == 200 && r.header("content-type").starts_with("text/javascript"), "{r:?}");
    assert!(r.header("content-security-policy").contains("default-src 'self'"));
    assert_eq!(r.header("x-frame-options"), "DENY");

    // GET /api/services
    let list = app.basic("GET", "/api/services", "").await.json();
    let names: Vec<&str> =
        list.as_array().expect("array").iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"haproxy") && names.contains(&"vrrp"), "{list}");
    for s in list.as_array().expect("array") {
        for key in ["status", "autostart", "running_revision", "saved_revision"] {
            assert!(s.get(key).is_some(), "{key} missing in {s}");
        }
    }

    // Config, running and saved.
    let r = app.basic("GET", "/api/services/haproxy/config", "").await;
    assert!(r.status == 200 && r.body.contains("defaults"), "{r:?}");
    assert_eq!(app.basic("GET", "/api/services/haproxy/config?which=saved", "").await.body, r.body);
    app.basic("GET", "/api/services/haproxy/config?which=bogus", "").await.assert_error(400);
    app.basic("GET", "/api/services/nope/config", "").await.assert_error(404);

    // Check.
    let port = free_port();
    let good = proxy_config(port, "hello-from-lanai");
    let r = app.basic("POST", "/api/services/haproxy/check", good.clone()).await;
    assert_eq!((r.status, r.json()["ok"].clone()), (200, Value::Bool(true)), "{}", r.body);
    let bad = "defaults\n    mode http\nfrontend f\n    frobnicate yes\n";
    let r = app.basic("POST", "/api/services/haproxy/check", bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], Value::Bool(false));
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    assert!(
        diags
            .iter()
            .any(|d| d["line"] == 4 && d["message"].as_str().is_some_and(|m| m.contains("frobnicate"))),
        "{v}"
    );
    app.basic("POST", "/api/services/nope/check", good.clone()).await.assert_error(404);
    app.basic("POST", "/api/services/haproxy/check", vec![0xffu8, 0xfe, 0x00]).await.assert_error(400);

    // Huge body: 413 JSON, nothing changed.
    let before = running_revision(&app, "haproxy").await;
    let huge = "#".repeat(2 * 1024 * 1024);
    app.basic("POST", "/api/services/haproxy/apply", huge.clone()).await.assert_error(413);
    app.basic("POST", "/api/services/haproxy/check", huge).await.assert_error(413);

    // Apply invalid: 422 with line numbers, running unchanged.
    let r = app.basic("POST", "/api/services/haproxy/apply", bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.json()["diagnostics"].as_array().is_some_and(|d| d.iter().any(|d| d["line"] == 4)));
    assert_eq!(running_revision(&app, "haproxy").await, before);

    // Diff against running.
    let r = app.basic("POST", "/api/services/haproxy/diff", good.clone()).await;
    let diff = r.json()["diff"].as_str().unwrap_or_default().to_string();
    assert!(diff.contains("+frontend fe") && diff.starts_with("--- running"), "{diff}");

    // Apply good: the data plane answers on the new frontend.
    let r = app.basic("POST", "/api/services/haproxy/apply", good.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rev = r.json()["revision"].as_i64().expect("revision");
    assert!(rev > before);
    assert_eq!(through_proxy(port, Some("hello-from-lanai")).await.as_deref(), Some("hello-from-lanai"));
    assert_eq!(app.basic("GET", "/api/services/haproxy/config", "").await.body, good);
    app.basic("POST", "/api/services/nope/apply", good.clone()).await.assert_error(404);

    // Revisions: the new one is running, not saved; detail has a diff.
    let revs = app.basic("GET", "/api/services/haproxy/revisions", "").await.json();
    let top = &revs.as_array().expect("array")[0];
    assert_eq!(
        (top["id"].as_i64(), top["running"].as_bool(), top["saved"].as_bool()),
        (Some(rev), Some(true), Some(false)),
        "{revs}"
    );
    assert_eq!(top["origin"], "api");
    let detail = app.basic("GET", &format!("/api/services/haproxy/revisions/{rev}"), "").await.json();
    assert!(detail["diff"].as_str().is_some_and(|d| d.contains("+frontend fe")), "{detail}");
    app.basic("GET", "/api/services/haproxy/revisions/abc", "").await.assert_error(400);
    app.basic("GET", "/api/services/haproxy/revisions/999999", "").await.assert_error(404);
    app.basic("GET", "/api/services/nope/revisions", "").await.assert_error(404);

    // Restore the previous revision: origin restore, the frontend is gone.
    let r = app.basic("POST", &format!("/api/services/haproxy/revisions/{before}/restore"), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let revs = app.basic("GET", "/api/services/haproxy/revisions", "").await.json();
    assert_eq!(revs[0]["origin"], "restore");
    assert_eq!(through_proxy(port, None).await, None, "frontend should be closed");
    app.basic("POST", "/api/services/haproxy/revisions/999999/restore", "").await.assert_error(404);

    // Control.
    let r = app.basic("POST", "/api/services/haproxy/reload", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.basic("POST", "/api/services/haproxy/explode", "").await.assert_error(404);
    app.basic("POST", "/api/services/nope/restart", "").await.assert_error(404);
    for action in ["stop", "start", "restart"] {
        let r = app.basic("POST", &format!("/api/services/vrrp/{action}"), "").await;
        assert_eq!(r.status, 200, "{action}: {}", r.body);
    }
    let list = app.basic("GET", "/api/services", "").await.json();
    assert!(
        list.as_array().is_some_and(|a| a.iter().any(|s| s["name"] == "vrrp" && s["status"] != "stopped")),
        "{list}"
    );

    // LB Admin through the API.
    app.basic("POST", "/api/services/haproxy/apply", good.clone()).await;
    let stat = app.basic("GET", "/api/lb/stat", "").await;
    assert_eq!(stat.status, 200, "{}", stat.body);
    assert!(
        stat.json()
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["proxy"] == "fe" && r["kind"] == "frontend")),
        "{}",
        stat.body
    );
    app.basic("POST", "/api/lb/servers/fe/nosuch/disable", "").await.assert_error(404);
    app.basic("POST", "/api/lb/servers/fe/x/explode", "").await.assert_error(404);

    // Save.
    let r = app.basic("POST", "/api/config/save", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["saved"].as_array().is_some_and(|s| s.iter().any(|n| n == "haproxy")), "{}", r.body);
    assert_eq!(app.basic("GET", "/api/services/haproxy/config?which=saved", "").await.body, good);

    // Backup and restore.
    let r = app.basic("GET", "/api/backup", "").await;
    assert!(r.header("content-disposition").starts_with("attachment"), "{r:?}");
    let backup = r.json();
    assert_eq!(backup["services"]["haproxy"], Value::String(good.clone()));
    let r = app.basic("POST", "/api/restore", backup.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["services"]["haproxy"]["ok"], Value::Bool(true));
    app.basic("POST", "/api/restore", "not json").await.assert_error(400);
    let r = app.basic("POST", "/api/restore", r#"{"services":{"haproxy":"frontend\n"}}"#).await;
    assert_eq!(r.status, 422, "{}", r.body);

    // Basic credentials a browser keeps are ambient: a foreign page's POST is refused.
    let auth = basic_header("admin", PASSWORD);
    let evil = [("authorization", auth.as_str()), ("origin", "https://evil.example")];
    app.call("POST", "/api/config/save", &evil, "").await.assert_error(403);
    let evil = [("authorization", auth.as_str()), ("sec-fetch-site", "cross-site")];
    app.call("POST", "/api/config/save", &evil, "").await.assert_error(403);
    let ours = app.origin();
    let ok = [("authorization", auth.as_str()), ("origin", ours.as_str())];
    assert_eq!(app.call("POST", "/api/config/save", &ok, "").await.status, 200);
    // Basic is for the API only: pages want a session.
    let r = app.call("GET", "/setup", &[("authorization", &auth)], "").await;
    assert_eq!(r.status, 302);

    // Unknown endpoint and method: JSON too.
    app.basic("GET", "/api/nothing/here", "").await.assert_error(404);
    app.basic("DELETE", "/api/services", "").await.assert_error(405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_login_csrf_and_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), Some(PASSWORD));
    let origin = app.origin();
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", origin.as_str())];

    let r = app.call("POST", "/login", &form, "username=admin&password=nope").await;
    assert_eq!(r.status, 401);
    let r = app
        .call(
            "POST",
            "/login",
            &[form[0], ("origin", "https://evil.example")],
            format!("username=admin&password={PASSWORD}"),
        )
        .await;
    assert_eq!(r.status, 403, "cross-origin login");
    let r = app.call("POST", "/login", &form, format!("username=admin&password={PASSWORD}")).await;
    assert_eq!(r.status, 303, "{r:?}");
    let cookie = r.header("set-cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    let session = cookie.split(';').next().expect("cookie").to_string();

    let r = app.call("GET", "/login", &[("cookie", &session)], "").await;
    assert_eq!((r.status, r.header("location").as_str()), (303, "/"), "logged in: no login form");

    // Every tab renders; the page carries the CSRF token.
    for page in ["/layer7", "/admin", "/services", "/setup", "/services/vrrp/edit"] {
        let r = app.call("GET", page, &[("cookie", &session)], "").await;
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        for tab in ["LB Layer7", "LB Admin", "Services", "Setup"] {
            assert!(r.body.contains(tab), "{page} lacks tab {tab}");
        }
    }
    wait_running(&app, "haproxy").await;
    let services = app.call("GET", "/services?advanced=1", &[("cookie", &session)], "").await.body;
    assert!(services.contains("href=\"/layer7\"") && services.contains("href=\"/services/vrrp/edit\""));
    assert!(services.contains("class=\"dot up\"") && services.contains("recent log"), "{services}");
    let vrrp = app.call("GET", "/services/vrrp/edit", &[("cookie", &session)], "").await.body;
    assert!(vrrp.contains("data-service=\"vrrp\"") && vrrp.contains("keepalived.conf"), "{vrrp}");
    let page = app.call("GET", "/layer7", &[("cookie", &session)], "").await.body;
    assert!(page.contains("<textarea") && page.contains("/static/editor.js") && !page.contains("<script>"));
    let token = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf meta")
        .to_string();
    assert_eq!(token.len(), 64);

    // Session GETs need no token.
    assert_eq!(app.call("GET", "/api/services", &[("cookie", &session)], "").await.status, 200);
    // POST without the token: 403 JSON.
    app.call("POST", "/api/config/save", &[("cookie", &session), ("origin", &origin)], "")
        .await
        .assert_error(403);
    // Wrong token.
    app.call(
        "POST",
        "/api/config/save",
        &[("cookie", &session), ("origin", &origin), ("x-csrf-token", "00")],
        "",
    )
    .await
    .assert_error(403);
    // Right token, wrong or missing Origin.
    app.call(
        "POST",
        "/api/config/save",
        &[("cookie", &session), ("origin", "https://evil.example"), ("x-csrf-token", &token)],
        "",
    )
    .await
    .assert_error(403);
    app.call(
        "POST",
        "/api/config/save",
        &[("cookie", &session), ("origin", "https://127.0.0.1:1"), ("x-csrf-token", &token)],
        "",
    )
    .await
    .assert_error(403);
    app.call("POST", "/api/config/save", &[("cookie", &session), ("x-csrf-token", &token)], "")
        .await
        .assert_error(403);
    // Both: 200. Referer stands in for Origin.
    let r = app
        .call(
            "POST",
            "/api/config/save",
            &[("cookie", &session), ("origin", &origin), ("x-csrf-token", &token)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let referer = format!("{origin}/setup");
    let r = app
        .call(
            "POST",
            "/api/services/haproxy/check",
            &[("cookie", &session), ("referer", &referer), ("x-csrf-token", &token)],
            "defaults\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Console apply is recorded with origin console.
    let text = app.basic("GET", "/api/services/haproxy/config", "").await.body;
    let r = app
        .call(
            "POST",
            "/api/services/haproxy/apply",
            &[("cookie", &session), ("origin", &origin), ("x-csrf-token", &token)],
            format!("{text}\n# edited\n"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let revs = app.basic("GET", "/api/services/haproxy/revisions", "").await.json();
    assert_eq!((revs[0]["origin"].as_str(), revs[0]["author"].as_str()), (Some("console"), Some("admin")));
    // The unsaved indicator shows on every tab now.
    let r = app.call("GET", "/services", &[("cookie", &session)], "").await;
    assert!(r.body.contains("id=\"unsaved\""), "no unsaved indicator");

    // HTML forms carry the token as a field.
    let with_field = format!("csrf={token}");
    let r = app
        .call(
            "POST",
            "/setup/save",
            &[("cookie", &session), ("origin", &origin), form[0]],
            with_field.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Saved: haproxy") && !r.body.contains("id=\"unsaved\""), "{}", r.body);
    let r = app
        .call("POST", "/setup/save", &[("cookie", &session), ("origin", &origin), form[0]], "csrf=bad")
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .call(
            "POST",
            "/services/vrrp/control",
            &[("cookie", &session), ("origin", &origin), form[0]],
            format!("{with_field}&action=reload"),
        )
        .await;
    assert_eq!((r.status, r.header("location").as_str()), (303, "/services"), "{}", r.body);

    // Password change: wrong old one refused; right one works for Basic too.
    let r = app
        .call(
            "POST",
            "/setup/password",
            &[("cookie", &session), ("origin", &origin), form[0]],
            format!("{with_field}&old=nope&new=another-pass-2&confirm=another-pass-2"),
        )
        .await;
    assert!(r.body.contains("current password is wrong"), "{}", r.body);
    let r = app
        .call(
            "POST",
            "/setup/password",
            &[("cookie", &session), ("origin", &origin), form[0]],
            format!("{with_field}&old={PASSWORD}&new=another-pass-2&confirm=another-pass-2"),
        )
        .await;
    assert!(r.body.contains("Password changed"), "{}", r.body);
    let auth = basic_header("admin", "another-pass-2");
    assert_eq!(app.call("GET", "/api/services", &[("authorization", &auth)], "").await.status, 200);
    app.call("GET", "/api/services", &[("authorization", &basic_header("admin", PASSWORD))], "")
        .await
        .assert_error(401);
    // The old session ended with the change; the browser got a new one.
    assert_eq!(app.call("GET", "/setup", &[("cookie", &session)], "").await.status, 302);
    let fresh = r.header("set-cookie");
    let session = fresh.split(';').next().expect("cookie").to_string();
    assert!(session.starts_with("lanai_session=") && session.len() > 20, "{fresh}");
    assert_eq!(app.call("GET", "/setup", &[("cookie", &session)], "").await.status, 200);

    // Logout ends the session server-side.
    let r = app.call("POST", "/logout", &[("cookie", &session), ("origin", &origin)], "").await;
    assert_eq!(r.status, 303);
    let r = app.call("GET", "/setup", &[("cookie", &session)], "").await;
    assert_eq!(r.status, 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_limit_locks_out_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), Some(PASSWORD));
    let wrong = basic_header("admin", "wrong");
    for _ in 0..5 {
        app.call("GET", "/api/services", &[("authorization", &wrong)], "").await.assert_error(401);
    }
    // Locked out even with the right password.
    app.basic("GET", "/api/services", "").await.assert_error(429);
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", &app.origin())];
    let r = app.call("POST", "/login", &form, format!("username=admin&password={PASSWORD}")).await;
    assert_eq!(r.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_config_survives_restart_unsaved_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let saved_text = proxy_config(port, "saved-one");
    let unsaved_text = proxy_config(port, "unsaved-one");
    {
        let app = Appliance::start(dir.path(), Some(PASSWORD));
        assert_eq!(app.basic("POST", "/api/services/haproxy/apply", saved_text.clone()).await.status, 200);
        assert_eq!(app.basic("POST", "/api/config/save", "").await.status, 200);
        assert_eq!(app.basic("POST", "/api/services/haproxy/apply", unsaved_text.clone()).await.status, 200);
        assert_eq!(through_proxy(port, Some("unsaved-one")).await.as_deref(), Some("unsaved-one"));
    }
    let app = Appliance::start(dir.path(), Some(PASSWORD));
    assert!(!app.stdout_text().contains("admin password:"), "not a first start");
    assert_eq!(app.basic("GET", "/api/services/haproxy/config", "").await.body, saved_text);
    assert_eq!(through_proxy(port, Some("saved-one")).await.as_deref(), Some("saved-one"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_generates_password_file_and_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), None);
    let password_line =
        || app.stdout_text().lines().find_map(|l| l.strip_prefix("admin password: ").map(str::to_string));
    // The reader thread takes the banner a line at a time.
    assert!(eventually(Duration::from_secs(5), || password_line().is_some()).await, "{}", app.stdout_text());
    let line = password_line().unwrap_or_default();
    let file = dir.path().join("initial-admin-password");
    assert_eq!(std::fs::read_to_string(&file).expect("password file").trim(), line);
    assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
    let key = dir.path().join("tls/key.pem");
    assert_eq!(std::fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
    let auth = basic_header("admin", &line);
    assert_eq!(app.call("GET", "/api/services", &[("authorization", &auth)], "").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_run_leaves_the_data_plane_serving_and_the_next_start_adopts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let text = proxy_config(port, "still-here");
    let pid_of = |list: &Value| {
        list.as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "haproxy"))
            .and_then(|s| s["pid"].as_u64())
    };
    let mut first = Appliance::start(dir.path(), Some(PASSWORD));
    assert_eq!(first.basic("POST", "/api/services/haproxy/apply", text.clone()).await.status, 200);
    assert_eq!(first.basic("POST", "/api/config/save", "").await.status, 200);
    let proxy_pid = pid_of(&first.basic("GET", "/api/services", "").await.json()).expect("proxy pid");
    if let Some(mut child) = first.child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The console is gone, the data plane is not.
    assert_eq!(through_proxy(port, Some("still-here")).await.as_deref(), Some("still-here"));
    let second = Appliance::start(dir.path(), Some(PASSWORD));
    let list = second.basic("GET", "/api/services", "").await.json();
    assert_eq!(pid_of(&list), Some(proxy_pid), "the proxy should be adopted, not restarted: {list}");
    assert_eq!(through_proxy(port, Some("still-here")).await.as_deref(), Some("still-here"));
    drop(second);
    // The second run stopped the adopted proxy on SIGTERM.
    assert_eq!(through_proxy(port, None).await, None);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_admin_shows_servers_and_changes_their_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), Some(PASSWORD));
    let (port, backend_port) = (free_port(), free_port());
    let text = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\n\n\
         backend app\n    server s1 127.0.0.1:{backend_port}\n    server s2 127.0.0.1:{backend_port}\n"
    );
    let r = app.basic("POST", "/api/services/haproxy/apply", text).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let status_of = |rows: &Value, name: &str| {
        rows.as_array()
            .and_then(|a| a.iter().find(|r| r["proxy"] == "app" && r["name"] == name))
            .and_then(|r| r["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    };

    // API: drain, then disable (maintenance), then enable.
    let r = app.basic("POST", "/api/lb/servers/app/s1/drain", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = app.basic("GET", "/api/lb/stat", "").await.json();
    assert!(status_of(&rows, "s1").starts_with("DRAIN"), "{rows}");
    assert_eq!(app.basic("POST", "/api/lb/servers/app/s1/disable", "").await.status, 200);
    let rows = app.basic("GET", "/api/lb/stat", "").await.json();
    assert!(status_of(&rows, "s1").starts_with("MAINT"), "{rows}");
    assert_eq!(app.basic("POST", "/api/lb/servers/app/s1/enable", "").await.status, 200);
    let rows = app.basic("GET", "/api/lb/stat", "").await.json();
    assert!(!status_of(&rows, "s1").starts_with("MAINT"), "{rows}");
    // Names are checked against show stat, never passed through blindly.
    app.basic("POST", "/api/lb/servers/app/s1%3Bshutdown/disable", "").await.assert_error(404);

    // The page lists them with their buttons; the form disables s2.
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", &app.origin())];
    let r = app.call("POST", "/login", &form, format!("username=admin&password={PASSWORD}")).await;
    let session = r.header("set-cookie").split(';').next().unwrap_or_default().to_string();
    let page = app.call("GET", "/admin", &[("cookie", &session)], "").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<td>s2</td>") && page.body.contains("name=\"op\" value=\"drain\""),
        "{}",
        page.body
    );
    let token = page
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string();
    let r = app
        .call(
            "POST",
            "/admin/server",
            &[("cookie", &session), form[0], form[1]],
            format!("csrf={token}&backend=app&server=s2&op=disable"),
        )
        .await;
    assert_eq!((r.status, r.header("location").as_str()), (303, "/admin"), "{}", r.body);
    let rows = app.basic("GET", "/api/lb/stat", "").await.json();
    assert!(status_of(&rows, "s2").starts_with("MAINT"), "{rows}");
    let audit = app.call("GET", "/setup", &[("cookie", &session)], "").await.body;
    assert!(audit.contains("disable server app/s2"), "audit line missing on Setup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_apply_is_500_restored_and_hostile_input_leaves_the_server_up() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), Some(PASSWORD));

    // Valid text the data plane cannot take (its port is taken): 500, previous text restored.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let before = app.basic("GET", "/api/services/haproxy/config", "").await.body;
    let r = app.basic("POST", "/api/services/haproxy/apply", proxy_config(port, "never")).await;
    assert_eq!(r.status, 500, "{}", r.body);
    let v = r.json();
    assert_eq!(v["restored"], Value::Bool(true), "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert_eq!(app.basic("GET", "/api/services/haproxy/config", "").await.body, before);
    drop(taken);

    // Plain HTTP and garbage on the TLS port, a half handshake: nothing breaks.
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x00][..],
        &[0u8; 4096][..],
    ] {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await {
            let _ = s.write_all(junk).await;
        }
    }
    // Odd paths and headers: JSON errors, no panic.
    app.basic("GET", "/api/services/%FF%FE/config", "").await.assert_error(400);
    app.basic("GET", "/api/services/haproxy/revisions/99999999999999999999999", "").await.assert_error(400);
    app.call("GET", "/api/services", &[("authorization", "Basic")], "").await.assert_error(401);
    app.call("GET", "/api/services", &[("authorization", "Basic %%%")], "").await.assert_error(401);
    app.call("GET", "/api/services", &[("cookie", "lanai_session=nonsense")], "").await.assert_error(401);
    let long_cookie = format!("lanai_session={}", "a".repeat(4000));
    app.call("GET", "/api/services", &[("cookie", &long_cookie)], "").await.assert_error(401);
    app.basic("POST", "/api/restore", r#"{"services":{"nope":"x"}}"#).await;
    assert_eq!(app.basic("GET", "/api/services", "").await.status, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_path_over_http2_with_the_localhost_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Appliance::start(dir.path(), Some(PASSWORD));
    let (d, port) = (dir.path(), app.port);
    let origin = format!("https://localhost:{port}");
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", origin.as_str())];
    let login = format!("username=admin&password={PASSWORD}");
    let r = https_as(d, port, "localhost", true, "POST", "/login", &form, login.into()).await;
    assert_eq!(r.status, 303, "{r:?}");
    let session = r.header("set-cookie").split(';').next().unwrap_or_default().to_string();
    let page =
        https_as(d, port, "localhost", true, "GET", "/setup", &[("cookie", &session)], Bytes::new()).await;
    assert_eq!(page.status, 200);
    let token = page
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string();
    let headers =
        [("cookie", session.as_str()), ("origin", origin.as_str()), ("x-csrf-token", token.as_str())];
    let r = https_as(d, port, "localhost", true, "POST", "/api/config/save", &headers, Bytes::new()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let evil = [("cookie", session.as_str()), ("origin", "https://evil:1"), ("x-csrf-token", token.as_str())];
    let r = https_as(d, port, "localhost", true, "POST", "/api/config/save", &evil, Bytes::new()).await;
    r.assert_error(403);
}

//! The Services tab's setup editor (a service's `service NAME` blocks of
//! config.rc), autostart following config.rc across Save and restart, the
//! network service without `--manage-network`, and the reboot endpoint
//! outside the image. Real `lanai run` over HTTPS.

mod support;
mod web_support;

use serde_json::Value;
use web_support::*;

fn service<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().and_then(|a| a.iter().find(|s| s["name"] == name)).unwrap_or(&Value::Null)
}

async fn login(app: &Appliance) -> String {
    let origin = app.origin();
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", origin.as_str())];
    let r = app.call("POST", "/login", &form, format!("username=admin&password={PASSWORD}")).await;
    assert_eq!(r.status, 303, "{r:?}");
    r.header("set-cookie").split(';').next().expect("cookie").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_editor_autostart_and_unmanaged_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = Appliance::start(dir.path(), Some(PASSWORD));
    wait_running(&app, "haproxy").await;

    // The network service is listed, stored, checked, but not run.
    let list = app.basic("GET", "/api/services", "").await.json();
    assert_eq!(service(&list, "network")["status"], "unmanaged", "{list}");
    let r = app.basic("POST", "/api/services/network/start", "").await;
    assert!(r.assert_error(409)["error"].as_str().is_some_and(|e| e.contains("--manage-network")));
    let rc = app.basic("GET", "/api/services/network/config", "").await.body;
    assert!(rc.contains("service network eth0") && rc.contains("ip address dhcp"), "{rc}");

    // A service's setup text: its block, or a bare `service NAME` line.
    let r = app.basic("GET", "/api/services/haproxy/setup", "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "service haproxy\n"));
    assert_eq!(
        app.basic("GET", "/api/services/network/setup", "").await.body,
        "service network eth0\n    ip address dhcp\n"
    );
    app.basic("GET", "/api/services/nope/setup", "").await.assert_error(404);

    // Check: diagnostics at the setup text's own lines.
    let r = app.basic("POST", "/api/services/haproxy/setup/check", "service haproxy\n  frobnicate\n").await;
    let body = r.assert_error(422);
    assert_eq!(body["diagnostics"][0]["line"], 2, "{body}");
    assert!(body["diagnostics"][0]["message"].as_str().is_some_and(|m| m.contains("'frobnicate'")), "{body}");
    let r = app.basic("POST", "/api/services/haproxy/setup/check", "service haproxy\nservice vrrp\n").await;
    assert_eq!(r.assert_error(422)["diagnostics"][0]["line"], 2);
    let r = app
        .basic("POST", "/api/services/network/setup/check", "service network eth0\n  ip address 10.0.0.1\n")
        .await;
    assert_eq!(r.assert_error(422)["diagnostics"][0]["line"], 2);
    let r = app.basic("POST", "/api/services/haproxy/setup/check", "service haproxy\n  no autostart\n").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Diff is of the whole config.rc.
    let r = app.basic("POST", "/api/services/haproxy/setup/diff", "service haproxy\n  no autostart\n").await;
    let diff = r.json()["diff"].as_str().unwrap_or_default().to_string();
    assert!(diff.contains("+service haproxy") && diff.contains("+  no autostart"), "{diff}");

    // Invalid apply changes nothing; a valid one is a new config.rc revision.
    let before = running_revision(&app, "network").await;
    app.basic("POST", "/api/services/vrrp/setup/apply", "service vrrp\n  track_svc haproxy\n")
        .await
        .assert_error(422);
    assert_eq!(running_revision(&app, "network").await, before);
    let r = app.basic("POST", "/api/services/haproxy/setup/apply", "service haproxy\n  no autostart\n").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(running_revision(&app, "network").await > before);
    let rc = app.basic("GET", "/api/services/network/config", "").await.body;
    assert!(
        rc.contains("service network eth0\n") && rc.ends_with("service haproxy\n  no autostart\n"),
        "{rc}"
    );
    let list = app.basic("GET", "/api/services", "").await.json();
    assert_eq!(service(&list, "haproxy")["autostart"], false, "{list}");
    assert_eq!(service(&list, "vrrp")["autostart"], true, "{list}");
    // `no autostart` is about boot: the running proxy keeps running.
    assert_eq!(service(&list, "haproxy")["status"], "running", "{list}");
    assert_eq!(app.basic("POST", "/api/config/save", "").await.status, 200);

    // Console pages: setup links, [advanced mode] with Edit Configuration.
    let session = login(&app).await;
    let page = app.call("GET", "/services", &[("cookie", &session)], "").await.body;
    assert!(page.contains("href=\"/services/haproxy/setup\"") && page.contains("[advanced mode]"), "{page}");
    assert!(!page.contains("Edit Configuration"), "basic mode hides Edit Configuration");
    assert!(page.contains("not managed: start lanai run with --manage-network"), "{page}");
    let page = app.call("GET", "/services?advanced=1", &[("cookie", &session)], "").await.body;
    for link in ["href=\"/layer7\"", "href=\"/services/vrrp/edit\"", "href=\"/services/network/edit\""] {
        assert!(page.contains(link), "{link} missing in advanced mode");
    }
    let page = app.call("GET", "/services/haproxy/setup", &[("cookie", &session)], "").await.body;
    assert!(
        page.contains("data-base=\"/api/services/haproxy/setup\"") && page.contains("no autostart"),
        "{page}"
    );
    let page = app.call("GET", "/setup", &[("cookie", &session)], "").await.body;
    assert!(!page.contains("/setup/reboot"), "no reboot button outside the image");
    app.basic("POST", "/api/system/reboot", "").await.assert_error(409);

    // Saved `no autostart`: after a restart the proxy is not started.
    app.stop();
    let app = Appliance::start(dir.path(), Some(PASSWORD));
    wait_running(&app, "vrrp").await;
    let list = app.basic("GET", "/api/services", "").await.json();
    assert_eq!(service(&list, "haproxy")["status"], "stopped", "{list}");
    assert_eq!(service(&list, "haproxy")["autostart"], false, "{list}");
    // Removing the line turns autostart back on.
    let r = app.basic("POST", "/api/services/haproxy/setup/apply", "service haproxy\n").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = app.basic("GET", "/api/services", "").await.json();
    assert_eq!(service(&list, "haproxy")["autostart"], true, "{list}");
}

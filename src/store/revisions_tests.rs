//! Unit tests of services, revisions and pointers (kept apart so revisions.rs stays short).

use super::super::tests::temp_store;
use super::*;

#[test]
fn origin_round_trips_through_text() {
    for origin in Origin::ALL {
        assert_eq!(origin.as_str().parse::<Origin>().unwrap(), origin);
        assert_eq!(origin.to_string(), origin.as_str());
    }
    assert!(matches!("Console".parse::<Origin>(), Err(StoreError::UnknownOrigin(_))));
    assert!(matches!("".parse::<Origin>(), Err(StoreError::UnknownOrigin(_))));
    assert_eq!(serde_json::to_string(&Origin::Push).unwrap(), "\"push\"");
}

#[test]
fn service_names() {
    for ok in ["haproxy", "lvs", "vrrp", "csyncd", "network", "system", "eth0", "ntp-client", "a_b"] {
        validate_service_name(ok).unwrap();
    }
    for bad in ["", "HAProxy", "-x", "a b", "a/b", "../etc", "é", &"x".repeat(65)] {
        assert!(matches!(validate_service_name(bad), Err(StoreError::InvalidServiceName(_))), "{bad:?}");
    }
}

#[tokio::test]
async fn ensure_service_creates_running_and_saved_default_once() {
    let (_dir, store) = temp_store().await;
    assert!(store.ensure_service("haproxy", "global\n").await.unwrap());
    assert!(!store.ensure_service("haproxy", "other\n").await.unwrap());
    let running = store.running("haproxy").await.unwrap().unwrap();
    let saved = store.saved("haproxy").await.unwrap().unwrap();
    assert_eq!(running, saved);
    assert_eq!(running.text, "global\n");
    assert_eq!((running.origin, running.author.as_str()), (Origin::Boot, SYSTEM_USER));
    assert_eq!(running.service, "haproxy");
    assert_eq!(store.revisions("haproxy", 10).await.unwrap().len(), 1);
    assert!(store.unsaved_services().await.unwrap().is_empty());
    let services = store.services().await.unwrap();
    assert_eq!(
        services,
        vec![ServiceRow {
            name: "haproxy".into(),
            autostart: true,
            running_revision: Some(running.id),
            saved_revision: Some(running.id),
        }]
    );
    assert!(matches!(store.ensure_service("Bad Name", "").await, Err(StoreError::InvalidServiceName(_))));
}

#[tokio::test]
async fn unknown_service_is_an_error_everywhere() {
    let (_dir, store) = temp_store().await;
    let unknown = |r: Result<(), StoreError>| match r {
        Err(StoreError::UnknownService(name)) => assert_eq!(name, "nope"),
        other => panic!("expected UnknownService, got {other:?}"),
    };
    unknown(store.add_revision("nope", "x", Origin::Api, "a").await.map(drop));
    unknown(store.apply_revision("nope", "x", Origin::Api, "a").await.map(drop));
    unknown(store.set_running("nope", RevisionId(1)).await);
    unknown(store.running("nope").await.map(drop));
    unknown(store.saved("nope").await.map(drop));
    unknown(store.revisions("nope", 5).await.map(drop));
    unknown(store.set_autostart("nope", false).await);
    // Nothing was written by the failed calls.
    assert!(store.audit_log(10).await.unwrap().is_empty());
    assert_eq!(store.revision(RevisionId(1)).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_revision_and_revision_of_another_service() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("haproxy", "h").await.unwrap();
    store.ensure_service("lvs", "l").await.unwrap();
    assert_eq!(store.revision(RevisionId(999)).await.unwrap(), None);
    assert!(matches!(
        store.set_running("haproxy", RevisionId(999)).await,
        Err(StoreError::UnknownRevision(RevisionId(999)))
    ));
    let lvs_rev = store.add_revision("lvs", "l2", Origin::Api, "alice").await.unwrap();
    match store.set_running("haproxy", lvs_rev).await {
        Err(StoreError::RevisionOfOtherService { revision, actual, expected }) => {
            assert_eq!((revision, actual.as_str(), expected.as_str()), (lvs_rev, "lvs", "haproxy"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.running("haproxy").await.unwrap().unwrap().text, "h");
    // The schema refuses it too, whatever path tries.
    let err = sqlx::query("UPDATE services SET saved_revision = ? WHERE name = 'haproxy'")
        .bind(lvs_rev.0)
        .execute(&store.pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another service"), "{err}");
}

#[tokio::test]
async fn add_revision_moves_no_pointer_and_set_running_does() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("haproxy", "v1").await.unwrap();
    let first = store.running("haproxy").await.unwrap().unwrap().id;
    let rev = store.add_revision("haproxy", "v2", Origin::File, "alice").await.unwrap();
    assert!(rev > first);
    assert_eq!(store.running("haproxy").await.unwrap().unwrap().id, first);
    assert!(store.unsaved_services().await.unwrap().is_empty());
    let stored = store.revision(rev).await.unwrap().unwrap();
    assert_eq!(
        (stored.service.as_str(), stored.text.as_str(), stored.origin, stored.author.as_str()),
        ("haproxy", "v2", Origin::File, "alice")
    );
    store.set_running("haproxy", rev).await.unwrap();
    assert_eq!(store.running("haproxy").await.unwrap().unwrap().id, rev);
    assert_eq!(store.saved("haproxy").await.unwrap().unwrap().id, first);
    let log = store.audit_log(1).await.unwrap();
    assert_eq!((log[0].user.as_str(), log[0].action.as_str()), (SYSTEM_USER, "service.running"));
    assert!(log[0].detail.contains("by alice"), "{}", log[0].detail);
    // Rollback to an older revision is just another set_running.
    store.set_running("haproxy", first).await.unwrap();
    assert_eq!(store.running("haproxy").await.unwrap().unwrap().text, "v1");
}

#[tokio::test]
async fn apply_then_unsaved_then_save_all() {
    let (_dir, store) = temp_store().await;
    for name in ["haproxy", "lvs", "vrrp"] {
        store.ensure_service(name, &format!("{name} default")).await.unwrap();
    }
    let h = store.apply_revision("haproxy", "h2", Origin::Console, "alice").await.unwrap();
    let v = store.apply_revision("vrrp", "v2", Origin::Push, "peer").await.unwrap();
    assert_eq!(store.running("haproxy").await.unwrap().unwrap().id, h);
    assert_eq!(store.unsaved_services().await.unwrap(), vec!["haproxy", "vrrp"]);
    let log = store.audit_log(1).await.unwrap();
    assert_eq!((log[0].user.as_str(), log[0].action.as_str()), ("peer", "apply"));
    assert_eq!(log[0].detail, format!("vrrp: revision {v} (push)"));

    assert_eq!(store.save_all("alice").await.unwrap(), vec!["haproxy", "vrrp"]);
    assert!(store.unsaved_services().await.unwrap().is_empty());
    for row in store.services().await.unwrap() {
        assert_eq!(row.running_revision, row.saved_revision, "{}", row.name);
    }
    assert_eq!(store.saved("haproxy").await.unwrap().unwrap().id, h);
    assert_eq!(store.saved("vrrp").await.unwrap().unwrap().id, v);
    let log = store.audit_log(1).await.unwrap();
    assert_eq!((log[0].user.as_str(), log[0].action.as_str()), ("alice", "save"));
    assert_eq!(log[0].detail, "saved haproxy, vrrp");

    // Nothing left: still audited, nothing moved.
    assert!(store.save_all("bob").await.unwrap().is_empty());
    assert_eq!(store.audit_log(1).await.unwrap()[0].detail, "nothing to save");
}

#[tokio::test]
async fn unsaved_compares_content_not_ids() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("lvs", "same").await.unwrap();
    store.apply_revision("lvs", "changed", Origin::Api, "a").await.unwrap();
    assert_eq!(store.unsaved_services().await.unwrap(), vec!["lvs"]);
    // Back to the saved text: a new revision, but nothing to save.
    store.apply_revision("lvs", "same", Origin::Api, "a").await.unwrap();
    assert!(store.unsaved_services().await.unwrap().is_empty());
}

#[tokio::test]
async fn revisions_are_newest_first_with_flags_and_limit() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("haproxy", "r0").await.unwrap();
    let r1 = store.apply_revision("haproxy", "r1", Origin::Console, "alice").await.unwrap();
    store.save_all("alice").await.unwrap();
    let r2 = store.add_revision("haproxy", "r2", Origin::Api, "bob").await.unwrap();
    let r3 = store.apply_revision("haproxy", "r3", Origin::Restore, "carol").await.unwrap();
    store.ensure_service("lvs", "other service").await.unwrap();

    let all = store.revisions("haproxy", 100).await.unwrap();
    let ids: Vec<RevisionId> = all.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(&ids[..3], &[r3, r2, r1]);
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    assert_eq!((all[0].origin, all[0].author.as_str()), (Origin::Restore, "carol"));
    let flags: Vec<(bool, bool)> = all.iter().map(|m| (m.is_running, m.is_saved)).collect();
    assert_eq!(flags, vec![(true, false), (false, false), (false, true), (false, false)]);
    assert!(all.windows(2).all(|w| w[0].created_at >= w[1].created_at));

    let two = store.revisions("haproxy", 2).await.unwrap();
    assert_eq!(two.iter().map(|m| m.id).collect::<Vec<_>>(), vec![r3, r2]);
    assert!(store.revisions("haproxy", 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn services_autostart_and_export() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("vrrp", "v").await.unwrap();
    store.ensure_service("haproxy", "h").await.unwrap();
    store.set_autostart("vrrp", false).await.unwrap();
    let services = store.services().await.unwrap();
    let names: Vec<(&str, bool)> = services.iter().map(|s| (s.name.as_str(), s.autostart)).collect();
    assert_eq!(names, vec![("haproxy", true), ("vrrp", false)]);
    store.set_autostart("vrrp", true).await.unwrap();
    assert!(store.services().await.unwrap().iter().all(|s| s.autostart));

    store.apply_revision("haproxy", "h2", Origin::Console, "a").await.unwrap();
    store.add_revision("vrrp", "not running", Origin::Console, "a").await.unwrap();
    assert_eq!(
        store.export_running().await.unwrap(),
        vec![("haproxy".to_string(), "h2".to_string()), ("vrrp".to_string(), "v".to_string())]
    );
}

#[tokio::test]
async fn service_without_revision_reads_as_none() {
    let (_dir, store) = temp_store().await;
    // Not reachable through the API (ensure_service always sets a default), but a restore or
    // a later migration might leave one: it must read as "none", not fail.
    sqlx::query("INSERT INTO services (name) VALUES ('bare')").execute(&store.pool).await.unwrap();
    assert_eq!(store.running("bare").await.unwrap(), None);
    assert_eq!(store.saved("bare").await.unwrap(), None);
    assert!(store.unsaved_services().await.unwrap().is_empty());
    assert!(store.export_running().await.unwrap().is_empty());
    assert!(store.save_all("a").await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_origin_in_the_database_is_reported_not_a_panic() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("haproxy", "h").await.unwrap();
    let id = store.running("haproxy").await.unwrap().unwrap().id;
    // Bypass the CHECK constraint the way a future schema or a hand edit could.
    let mut conn = store.pool.acquire().await.unwrap();
    sqlx::query("PRAGMA ignore_check_constraints = ON").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE revisions SET origin = 'martian' WHERE id = ?")
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert!(matches!(store.revision(id).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(store.running("haproxy").await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn texts_are_stored_verbatim() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("haproxy", "").await.unwrap();
    let text = "global\n\tmaxconn 100\r\n# é ü \u{1F600}\n'quote' \"dq\" ; -- \0 nul\n".repeat(1000);
    let rev = store.apply_revision("haproxy", &text, Origin::File, "alice").await.unwrap();
    assert_eq!(store.revision(rev).await.unwrap().unwrap().text, text);
    assert_eq!(store.running("haproxy").await.unwrap().unwrap().text, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_do_not_fail_with_busy() {
    let (_dir, store) = temp_store().await;
    store.ensure_service("haproxy", "h").await.unwrap();
    store.ensure_service("lvs", "l").await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    let service = if (t + i) % 2 == 0 { "haproxy" } else { "lvs" };
                    let text = format!("{t}/{i}");
                    if i % 5 == 4 {
                        store.save_all("writer").await.unwrap();
                    } else {
                        let rev = store.apply_revision(service, &text, Origin::Api, "writer").await.unwrap();
                        assert_eq!(store.revision(rev).await.unwrap().unwrap().text, text);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = store.revisions("haproxy", 1000).await.unwrap().len()
        + store.revisions("lvs", 1000).await.unwrap().len();
    assert_eq!(total, 2 + 4 * 12);
}

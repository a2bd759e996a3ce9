//! HTTP-mode behaviour of `lanai proxy`, checked against real backends and,
//! where HAProxy's observable behaviour is the reference, against HAProxy 2.6
//! running the same configuration side by side.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use support::*;

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";

/// The same configuration for lanai and haproxy, differing only in the port.
fn pair_config(body: &str, port_lanai: u16, port_haproxy: u16) -> (ConfigFile, ConfigFile) {
    let make =
        |port: u16| write_config(&format!("{DEFAULTS}\nfrontend fe\n    bind 127.0.0.1:{port}\n{body}"));
    (make(port_lanai), make(port_haproxy))
}

async fn sequence(port: u16, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(port, "/").await.text());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_roundrobin_order_matches_haproxy() {
    let a = Backend::named("a").await;
    let b = Backend::named("b").await;
    let c = Backend::named("c").await;
    let body = format!(
        "    default_backend be\nbackend be\n    balance roundrobin\n    server a 127.0.0.1:{} weight 3\n    server b 127.0.0.1:{} weight 1\n    server c 127.0.0.1:{} weight 2\n",
        a.port, b.port, c.port
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    let ours = sequence(pl, 12).await;
    let theirs = sequence(ph, 12).await;
    let count = |v: &[String], s: &str| v.iter().filter(|x| *x == s).count();
    assert_eq!((count(&ours, "a"), count(&ours, "b"), count(&ours, "c")), (6, 2, 4), "{ours:?}");
    assert_eq!(
        (count(&theirs, "a"), count(&theirs, "b"), count(&theirs, "c")),
        (count(&ours, "a"), count(&ours, "b"), count(&ours, "c"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_rr_and_source_hash_pick_what_haproxy_picks() {
    let a = Backend::named("a").await;
    let b = Backend::named("b").await;
    let c = Backend::named("c").await;
    for algo in ["static-rr", "source", "uri"] {
        let body = format!(
            "    default_backend be\nbackend be\n    balance {algo}\n    server a 127.0.0.1:{} weight 1\n    server b 127.0.0.1:{} weight 1\n    server c 127.0.0.1:{} weight 2\n",
            a.port, b.port, c.port
        );
        let (pl, ph) = (free_port(), free_port());
        let (cl, ch) = pair_config(&body, pl, ph);
        let _l = start_lanai(&cl.path, pl);
        let _h = start_haproxy(&ch.path, ph);
        for path in ["/", "/a/b", "/x?y=1", "/static/img.png"] {
            let ours = get(pl, path).await.text();
            let theirs = get(ph, path).await.text();
            if algo != "static-rr" {
                assert_eq!(ours, theirs, "{algo} {path}");
            }
        }
        if algo == "static-rr" {
            assert_eq!(sequence(pl, 8).await, sequence(ph, 8).await, "static-rr order");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_gives_haproxy_503() {
    let dead = free_port();
    let body = format!("    default_backend be\nbackend be\n    server s1 127.0.0.1:{dead}\n");
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    let ours = get(pl, "/").await;
    let theirs = get(ph, "/").await;
    assert_eq!(ours.status, 503);
    assert_eq!(theirs.status, 503);
    assert_eq!(ours.body, theirs.body);
    assert_eq!(ours.header("content-type"), theirs.header("content-type"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_response_gives_502_and_timeout_504() {
    let (junk, _t1) = raw_backend(b"THIS IS NOT HTTP\r\n\r\n", Duration::ZERO).await;
    let (slow, _t2) =
        raw_backend(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", Duration::from_secs(3)).await;
    let body = format!(
        "    use_backend slow if {{ path_beg /slow }}\n    default_backend junk\nbackend junk\n    server s 127.0.0.1:{junk}\nbackend slow\n    timeout server 500ms\n    server s 127.0.0.1:{slow}\n"
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    for port in [pl, ph] {
        let r = get(port, "/").await;
        assert_eq!(r.status, 502, "port {port}");
        let r = get(port, "/slow").await;
        assert_eq!(r.status, 504, "port {port}");
    }
    assert_eq!(get(pl, "/").await.body, get(ph, "/").await.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_scheme_and_location_match_haproxy() {
    let be = Backend::named("app").await;
    let body = format!(
        "    redirect scheme https if !{{ ssl_fc }} {{ path_beg /secure }}\n    http-request redirect location /new code 301 if {{ path /old }}\n    http-request redirect prefix https://example.org drop-query if {{ path_beg /moved }}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{}\n",
        be.port
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    for path in ["/secure/x?a=1", "/old", "/moved/here?q=2", "/plain"] {
        let ours = request(pl, "GET", path, &[("host", "www.example.com")], "").await.unwrap();
        let theirs = request(ph, "GET", path, &[("host", "www.example.com")], "").await.unwrap();
        assert_eq!(ours.status, theirs.status, "{path}");
        assert_eq!(ours.header("location"), theirs.header("location"), "{path}");
    }
    let r = request(pl, "GET", "/secure/x?a=1", &[("host", "www.example.com")], "").await.unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").as_deref(), Some("https://www.example.com/secure/x?a=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_insert_and_persistence_match_haproxy() {
    let named_cacheable = |name: &'static str| {
        Arc::new(move |_req: hyper::Request<Bytes>| {
            Response::builder()
                .header("last-modified", "Sat, 21 Nov 2026 10:02:21 GMT")
                .body(Full::new(Bytes::from(name)))
                .unwrap()
        })
    };
    let a = Backend::start(named_cacheable("web01")).await;
    let b = Backend::start(named_cacheable("web02")).await;
    let body = format!(
        "    default_backend be\nbackend be\n    balance roundrobin\n    cookie SERVERID insert indirect nocache\n    server web01 127.0.0.1:{} cookie web01\n    server web02 127.0.0.1:{} cookie web02\n",
        a.port, b.port
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    let ours = get(pl, "/").await;
    let theirs = get(ph, "/").await;
    let set = ours.header("set-cookie").expect("lanai set a cookie");
    assert_eq!(Some(set.clone()), theirs.header("set-cookie"));
    assert_eq!(ours.header("cache-control"), theirs.header("cache-control"));
    assert_eq!(ours.header("cache-control").as_deref(), Some("private"));
    // Stuck to web02 with the cookie, whatever round-robin would say.
    for port in [pl, ph] {
        for _ in 0..4 {
            let r = request(port, "GET", "/", &[("cookie", "SERVERID=web02")], "").await.unwrap();
            assert_eq!(r.text(), "web02");
            assert_eq!(r.header("set-cookie"), None, "indirect: no cookie re-sent");
        }
    }
}

/// HAProxy's cookie date encoding (`s30tob64` of Unix seconds / 4).
fn cookie_date(secs: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let v = (secs >> 2) as u32;
    (0..5).map(|i| ALPHABET[((v >> (24 - 6 * i)) & 0x3f) as usize] as char).collect()
}

fn cookie_date_secs(text: &str) -> u64 {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let v =
        text.bytes().fold(0u64, |acc, b| (acc << 6) | ALPHABET.iter().position(|&c| c == b).unwrap() as u64);
    v << 2
}

/// `SERVERID=SRV|LAST|FIRST; path=/` -> (SRV, LAST, FIRST, attributes).
fn dated_cookie(set: &str) -> (String, u64, u64, String) {
    let (pair, attrs) = set.split_once(';').unwrap();
    let value = pair.strip_prefix("SERVERID=").unwrap();
    let parts: Vec<&str> = value.split('|').collect();
    assert_eq!(parts.len(), 3, "{set}");
    (parts[0].to_string(), cookie_date_secs(parts[1]), cookie_date_secs(parts[2]), attrs.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_maxidle_maxlife_dates_match_haproxy() {
    let a = Backend::named("web01").await;
    let b = Backend::named("web02").await;
    let body = format!(
        "    default_backend be\nbackend be\n    balance roundrobin\n    cookie SERVERID insert indirect nocache maxidle 30m maxlife 2h\n    server web01 127.0.0.1:{} cookie web01\n    server web02 127.0.0.1:{} cookie web02\n",
        a.port, b.port
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let near = |date: u64, want: u64| date + 8 >= want && date <= want + 8;
    for port in [pl, ph] {
        // Inserted with both dates stamped now.
        let r = get(port, "/").await;
        let (srv, last, first, attrs) = dated_cookie(&r.header("set-cookie").expect("cookie inserted"));
        assert_eq!((srv.as_str(), attrs.as_str()), (r.text().as_str(), " path=/"), "{port}");
        assert!(near(last, now()) && near(first, now()), "{port}: {last} {first} vs {}", now());

        // Seen 60 s ago, first 10 min ago: kept on web02, last date refreshed, first kept.
        let t = now();
        let cookie = format!("SERVERID=web02|{}|{}", cookie_date(t - 60), cookie_date(t - 600));
        let r = request(port, "GET", "/", &[("cookie", &cookie)], "").await.unwrap();
        assert_eq!(r.text(), "web02", "{port}");
        let (srv, last, first, _) = dated_cookie(&r.header("set-cookie").expect("refreshed"));
        assert_eq!(srv, "web02");
        assert!(near(last, now()), "{port}: last {last}");
        assert_eq!(first, ((t - 600) >> 2) << 2, "{port}: the first date is kept");

        // Just issued (last date ahead of now): nothing to re-send.
        let t = now();
        let cookie = format!("SERVERID=web02|{}|{}", cookie_date(t + 3), cookie_date(t));
        let r = request(port, "GET", "/", &[("cookie", &cookie)], "").await.unwrap();
        assert_eq!((r.text().as_str(), r.header("set-cookie")), ("web02", None), "{port}");

        // Idle for an hour (> maxidle), or born 3 h ago (> maxlife): ignored,
        // the request is balanced and a new cookie starts a new life.
        for cookie in [
            format!("SERVERID=web02|{}|{}", cookie_date(t - 3600), cookie_date(t - 3600)),
            format!("SERVERID=web02|{}|{}", cookie_date(t), cookie_date(t - 3 * 3600)),
        ] {
            let mut seen = Vec::new();
            for _ in 0..4 {
                let r = request(port, "GET", "/", &[("cookie", &cookie)], "").await.unwrap();
                let (srv, _, first, _) = dated_cookie(&r.header("set-cookie").expect("new cookie"));
                assert_eq!(srv, r.text(), "{port}");
                assert!(near(first, now()), "{port}: a new life starts now");
                seen.push(srv);
            }
            assert!(seen.iter().any(|s| s == "web01"), "{port}: expired cookie must not pin: {seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwardfor_and_header_rules_reach_the_server() {
    let be = Backend::echo().await;
    let body = format!(
        "    option forwardfor\n    http-request set-header X-Via lanai\n    http-request add-header X-Client %[src]\n    http-request del-header X-Secret\n    http-request replace-value Host (.*):8080 \\1:8443\n    http-response set-header X-Served-By %[dst_port]\n    default_backend be\nbackend be\n    server s 127.0.0.1:{}\n",
        be.port
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    for port in [pl, ph] {
        let r = request(port, "GET", "/p?q=1", &[("host", "site.test:8080"), ("x-secret", "s")], "")
            .await
            .unwrap();
        let t = r.text().to_ascii_lowercase();
        assert!(t.starts_with("get /p?q=1\n"), "{port}: {t}");
        assert!(t.contains("x-forwarded-for: 127.0.0.1\n"), "{port}: {t}");
        assert!(t.contains("x-via: lanai\n"), "{port}: {t}");
        assert!(t.contains("x-client: 127.0.0.1\n"), "{port}: {t}");
        assert!(t.contains("host: site.test:8443\n"), "{port}: {t}");
        assert!(!t.contains("x-secret"), "{port}: {t}");
        assert_eq!(r.header("x-served-by"), Some(port.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_routing_deny_and_return() {
    let api = Backend::named("api").await;
    let web = Backend::named("web").await;
    let body = format!(
        "    acl is_api path_beg /api\n    acl admin path_beg /admin\n    http-request deny if admin\n    http-request return status 200 content-type text/plain string pong if {{ path /ping }}\n    use_backend api if is_api METH_GET || is_api METH_POST\n    default_backend web\nbackend api\n    server s 127.0.0.1:{}\nbackend web\n    server s 127.0.0.1:{}\n",
        api.port, web.port
    );
    let (pl, ph) = (free_port(), free_port());
    let (cl, ch) = pair_config(&body, pl, ph);
    let _l = start_lanai(&cl.path, pl);
    let _h = start_haproxy(&ch.path, ph);
    for port in [pl, ph] {
        assert_eq!(get(port, "/api/users").await.text(), "api");
        assert_eq!(request(port, "DELETE", "/api/users", &[], "").await.unwrap().text(), "web");
        assert_eq!(get(port, "/index.html").await.text(), "web");
        assert_eq!(get(port, "/admin").await.status, 403);
        let pong = get(port, "/ping").await;
        assert_eq!((pong.status, pong.text().as_str()), (200, "pong"));
        assert_eq!(pong.header("content-type").as_deref(), Some("text/plain"));
    }
    assert_eq!(get(pl, "/admin").await.body, get(ph, "/admin").await.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_get_431_not_a_crash() {
    let be = Backend::named("ok").await;
    let port = free_port();
    let cfg = write_config(&format!(
        "{DEFAULTS}\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{}\n",
        be.port
    ));
    let _l = start_lanai(&cfg.path, port);
    let big = "x".repeat(200 * 1024);
    let r = request(port, "GET", "/", &[("x-big", &big)], "").await;
    // A closed connection is also acceptable for an oversized head.
    if let Ok(got) = r {
        assert!(got.status == 431 || got.status == 400, "status {}", got.status);
    }
    // Still serving afterwards.
    assert_eq!(get(port, "/").await.text(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_response_is_streamed_not_buffered() {
    // The backend sends one chunk, waits, then the rest: the client must see
    // the first chunk long before the end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let be_port = listener.local_addr().unwrap().port();
    let _task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ =
                    s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n").await;
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let _ = s.write_all(b"4\r\nlast\r\n0\r\n\r\n").await;
            });
        }
    });
    let port = free_port();
    let cfg = write_config(&format!(
        "{DEFAULTS}\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{be_port}\n"
    ));
    let _l = start_lanai(&cfg.path, port);
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let started = std::time::Instant::now();
    let resp = sender
        .send_request(hyper::Request::get("/").header("host", "x").body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    use http_body_util::BodyExt;
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first");
    assert!(started.elapsed() < Duration::from_millis(1000), "first chunk took {:?}", started.elapsed());
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_tunnelled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let be = Backend::start(Arc::new(|mut req: hyper::Request<Bytes>| {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = hyper_util::rt::TokioIo::new(up);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::new(Bytes::new()))
            .unwrap()
    }))
    .await;
    let port = free_port();
    let cfg = write_config(&format!(
        "{DEFAULTS}    timeout tunnel 30s\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{}\n",
        be.port
    ));
    let _l = start_lanai(&cfg.path, port);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s.write_all(b"ping-through-tunnel").await.unwrap();
    let mut buf = [0u8; 19];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping-through-tunnel");
}

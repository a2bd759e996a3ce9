//! `lanai run`: the appliance daemon. Opens (or creates) the store, boots
//! the services, serves the console over HTTPS until SIGTERM/SIGINT, then
//! stops the children. A SIGKILL leaves the children running; the next
//! start adopts them (see the supervisor).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use super::pipeline::Options;
use super::Appliance;
use crate::web;

/// Runs the appliance in the foreground; tracing must be initialised.
pub fn run(data_dir: &Path, listen: SocketAddr, options: Options) -> ExitCode {
    // Two workers: the appliance is a control plane; the data plane runs in
    // its own processes with its own threads.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lanai run: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(data_dir, listen, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanai run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The host name the console URL shows.
fn url_host(listen: SocketAddr) -> String {
    match listen.ip() {
        ip if ip.is_unspecified() => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    }
}

async fn run_async(data_dir: &Path, listen: SocketAddr, options: Options) -> Result<(), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let tls = web::tls::load_or_create(data_dir)?;
    // Bind before opening the appliance: a port already in use is reported
    // before any child is started.
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("listen {listen}: {e}"))?;
    let (app, initial_password) = Appliance::open_with(data_dir, exe, options).await?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // One write: whoever waits for the console line finds the password with it.
    let mut banner = format!("Lanai console: https://{}:{}/\n", url_host(local), local.port());
    if let Some(password) = initial_password {
        banner += &format!("admin password: {password}\n");
        banner += &format!("(also in {})\n", data_dir.join("initial-admin-password").display());
    }
    print!("{banner}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let served = web::serve_on(app.clone(), listener, tls, stop_rx).await;
    tracing::info!("stopping: shutting the services down");
    app.shutdown(false).await;
    served.map_err(|e| format!("console: {e}"))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

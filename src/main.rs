//! `lanai` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lanai::conf::ConfigKind;

#[derive(Parser)]
#[command(name = "lanai", version, about = "Load-balancer appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance: store, supervised services and the HTTPS console.
    Run {
        /// Store, certificate, run directory.
        #[arg(long, default_value = "./lanai-data")]
        data_dir: PathBuf,
        /// Console address.
        #[arg(long, default_value = "0.0.0.0:4444")]
        listen: std::net::SocketAddr,
        /// Run the network service: config.rc's interfaces, addresses and
        /// routes are applied to this host (the appliance image does this).
        #[arg(long)]
        manage_network: bool,
    },
    /// Validate a configuration file; print every problem as FILE:LINE: message.
    Check {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Configuration format.
        #[arg(long, value_enum, default_value = "haproxy")]
        kind: ConfigKind,
    },
    /// Run the data plane in the foreground (SIGHUP reloads, SIGTERM stops gracefully).
    Proxy {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Extra runtime API socket at admin level (used by `lanai run`).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Serves a chrooted `lanai proxy` the files its configuration names
    /// (started by the proxy itself; its socket is standard input).
    #[command(hide = true)]
    FileBroker { file: PathBuf },
    /// Run VRRP from a keepalived.conf, like `keepalived -f` (VRRP only).
    Vrrp {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Control socket (default $LANAI_RUN_DIR/vrrp.sock or /run/lanai/vrrp.sock).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Apply the network blocks of config.rc (SIGHUP reloads, SIGTERM undoes and stops).
    Network {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Control socket (default $LANAI_RUN_DIR/network.sock or /run/lanai/network.sock).
        #[arg(long)]
        control: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // `lanai network` runs udhcpc with this binary as its script: udhcpc
    // calls `SCRIPT EVENT`, which is not a subcommand.
    if std::env::var_os(lanai::network::dhcp::HOOK_ENV).is_some() {
        let event = std::env::args().nth(1).unwrap_or_default();
        return lanai::network::dhcp::hook(&event);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run { data_dir, listen, manage_network } => {
            init_tracing();
            let options = lanai::appliance::pipeline::Options { manage_network };
            lanai::appliance::run::run(&data_dir, listen, options)
        }
        Command::Proxy { file, control } => {
            init_tracing();
            lanai::proxy::process::run(&file, control.as_deref())
        }
        Command::Check { file, kind } => {
            let (diags, valid) = lanai::conf::check_file(&file, kind);
            for d in &diags {
                eprintln!("{d}");
            }
            if valid {
                println!("Configuration file is valid");
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Vrrp { file, control } => lanai::vrrp::run(&file, control),
        Command::FileBroker { file } => lanai::proxy::jail::serve_broker(&file),
        Command::Network { file, control } => lanai::network::run(&file, control),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LANAI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

// The data plane allocates per request; mimalloc is faster than glibc's
// malloc for that pattern (measured in bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

//! `lanai` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lanai", version, about = "Load-balancer appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file; print every problem as FILE:LINE: message.
    Check {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Run the data plane in the foreground (SIGHUP reloads, SIGTERM stops gracefully).
    Proxy {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Proxy { file } => {
            init_tracing();
            lanai::proxy::engine::run(&file)
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}:0: cannot read file: {e}");
            return ExitCode::from(1);
        }
    };
    let (_, diags) = lanai::conf::haproxy::parse(&name, &text);
    for d in &diags {
        eprintln!("{d}");
    }
    if lanai::conf::has_errors(&diags) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LANAI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

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
    /// Run VRRP from a keepalived.conf, like `keepalived -f` (VRRP only).
    Vrrp {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Control socket (default $LANAI_RUN_DIR/vrrp.sock or /run/lanai/vrrp.sock).
        #[arg(long)]
        control: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Vrrp { file, control } => lanai::vrrp::run(&file, control),
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

//! The `conclave` binary.

use clap::Parser;
use conclave::cli::{normalize_go_flags, Cli, Command};

fn main() {
    let args = normalize_go_flags(std::env::args());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let result = match cli.command {
        Command::Agent(args) => conclave::cli::agent::run(args),
        Command::Version => {
            println!("Conclave v{}", env!("CARGO_PKG_VERSION"));
            println!("Revision (Consul-compatible API v1)");
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("==> {e:#}");
        std::process::exit(1);
    }
}

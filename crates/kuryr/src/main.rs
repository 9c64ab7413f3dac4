//! `kuryr`: the Docker network + IPAM driver daemon.
//!
//! Also answers as `kuryr-server` (a symlink), with kuryr-libnetwork's
//! command line: `kuryr-server --config-file /etc/kuryr/kuryr.conf`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "kuryr",
    version,
    about = "Docker network and IPAM driver backed by OpenStack Neutron"
)]
struct Cli {
    /// kuryr.conf to read; repeat to merge several (later ones win).
    #[arg(long = "config-file", global = true, value_name = "PATH")]
    config_file: Vec<PathBuf>,
    /// Log at debug level.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the driver daemon (the default).
    Server,
    /// Load and validate the configuration, print the warnings, and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let files = if cli.config_file.is_empty() {
        kuryr::config::default_config_files()
    } else {
        cli.config_file.clone()
    };
    let config = match kuryr::config::Config::load(&files) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kuryr: {e}");
            return ExitCode::from(2);
        }
    };
    let level = if cli.debug || config.default.debug {
        "debug"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_env("KURYR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,reqwest=warn")));
    // Colours only on a terminal: the log usually goes to a file or journald.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    match cli.command.unwrap_or(Command::Server) {
        Command::CheckConfig => {
            for w in &config.warnings {
                println!("warning: {w}");
            }
            match config.session_config() {
                Ok(_) => {
                    println!("configuration OK ({})", config.files.join(", "));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kuryr: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Server => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("kuryr: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(kuryr::daemon::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

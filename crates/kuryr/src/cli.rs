//! The command line of `kuryr` (and of `kuryr-server`, its drop-in name).
//!
//! `kuryr-server --config-file /etc/kuryr/kuryr.conf` (kuryr-libnetwork's
//! command line) runs the daemon, as `kuryr` with no subcommand does.
//! The `template` and `node` subcommands are the Swarm cluster integration
//! ([`crate::cluster`]).

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
    /// Cluster templates (network_driver kuryr).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Set up or check a node of a Swarm cluster.
    #[command(subcommand)]
    Node(NodeCommand),
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// Validate a cluster template with Magnum's rules (and the operator's
    /// driver policy from the parameters); print the effective template.
    Validate {
        /// The cluster template (JSON, Magnum's fields).
        #[arg(long, value_name = "FILE")]
        template: PathBuf,
        /// The cluster parameters (JSON), for the network-driver policy.
        #[arg(long, value_name = "FILE")]
        params: Option<PathBuf>,
    },
    /// Print the Keystone access rules for the node credential (JSON).
    AccessRules {
        /// Also allow GET /v2.0/agents, so that `node check` sees the agent.
        #[arg(long)]
        with_check: bool,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Write this node's kuryr configuration, units and agent setup;
    /// idempotent.
    Setup {
        /// The cluster template (JSON, Magnum's fields).
        #[arg(long, value_name = "FILE")]
        template: PathBuf,
        /// The cluster parameters (JSON): Keystone, the node credential, ...
        #[arg(long, value_name = "FILE")]
        params: PathBuf,
        /// This node's role in the swarm.
        #[arg(long, value_enum)]
        role: crate::cluster::Role,
        /// Write every file under this directory; services are only
        /// touched when it is `/`.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Use this host name instead of the machine's.
        #[arg(long, value_name = "NAME")]
        hostname: Option<String>,
        /// Managed plugin mode: install the plugin into this dockerd
        /// (`docker -H URL`), even when --root is not `/`.
        #[arg(long, value_name = "URL")]
        docker_host: Option<String>,
    },
    /// Report this node's health, one line per check; exit 1 if any fails.
    Check {
        /// dockerd's API socket.
        #[arg(long, value_name = "URL", default_value = crate::paths::DOCKER_HOST)]
        docker_host: String,
    },
}

/// The cluster subcommands need no kuryr.conf (setup writes it; check
/// reports on it), so they run before the daemon's configuration loading.
fn cluster_command(cli: &Cli, command: &Command) -> Option<ExitCode> {
    use crate::cluster::cli;
    let code = match command {
        Command::Template(TemplateCommand::Validate { template, params }) => {
            cli::template_validate(template, params.as_deref())
        }
        Command::Template(TemplateCommand::AccessRules { with_check }) => {
            cli::print_access_rules(*with_check)
        }
        Command::Node(NodeCommand::Setup {
            template,
            params,
            role,
            root,
            dry_run,
            hostname,
            docker_host,
        }) => cli::node_setup(&crate::cluster::setup::SetupOptions {
            template: template.clone(),
            params: params.clone(),
            role: *role,
            root: root.clone(),
            dry_run: *dry_run,
            hostname: hostname.clone(),
            docker_host: docker_host.clone(),
        }),
        Command::Node(NodeCommand::Check { docker_host }) => {
            let mut opts = crate::cluster::check::CheckOptions {
                docker_host: docker_host.clone(),
                ..Default::default()
            };
            if let Some(file) = cli.config_file.last() {
                opts.config_file = file.clone();
            }
            cli::node_check(&opts)
        }
        _ => return None,
    };
    Some(ExitCode::from(code))
}

/// Parse the command line and run it: the whole of `main` for both
/// binaries.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(command) = &cli.command
        && matches!(command, Command::Template(_) | Command::Node(_))
    {
        let level = if cli.debug { "debug" } else { "warn" };
        let filter = EnvFilter::try_from_env("KURYR_LOG")
            .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,reqwest=warn")));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .init();
        if let Some(code) = cluster_command(&cli, command) {
            return code;
        }
    }
    let files = if cli.config_file.is_empty() {
        crate::config::default_config_files()
    } else {
        cli.config_file.clone()
    };
    let config = match crate::config::Config::load(&files) {
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
        Command::Template(_) | Command::Node(_) => ExitCode::FAILURE,
        Command::CheckConfig => {
            for w in config.warnings.iter().chain(&config.transport_warnings()) {
                println!("warning: {w}");
            }
            for n in config.notes() {
                println!("note: {n}");
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
            match runtime.block_on(crate::daemon::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The whole cause chain: the TLS or connect error, not
                    // only "error sending request".
                    tracing::error!("{}", kuryr_openstack::chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

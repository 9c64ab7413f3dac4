//! The command line of `kuryr` (and of `kuryr-server`, its drop-in name).
//!
//! `kuryr-server --config-file /etc/kuryr/kuryr.conf` (kuryr-libnetwork's
//! command line) runs the daemon, as `kuryr` with no subcommand does.
//! The `template` and `node` subcommands are the Swarm cluster integration
//! ([`crate::cluster`]); `status` reports what this node serves
//! ([`crate::status`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::logging::{self, LogSetup};

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
    Server {
        /// Before serving, drop every capability but CAP_NET_ADMIN (from
        /// all sets, the bounding set included) and set no_new_privs; a
        /// failure is fatal. The managed plugin runs with it: dockerd gives
        /// a plugin its default container capabilities on top of the ones
        /// it asks for.
        #[arg(long)]
        drop_capabilities: bool,
    },
    /// Load and validate the configuration, print the warnings, and exit.
    CheckConfig,
    /// Cluster templates (network_driver kuryr).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Set up or check a node of a Swarm cluster.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Show the networks and endpoints this node serves, with their Neutron
    /// ports, and what is out of step between Docker and Neutron; exit 1
    /// if anything is.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// dockerd's API socket.
        #[arg(long, value_name = "URL", default_value = crate::paths::DOCKER_HOST)]
        docker_host: String,
    },
    /// Write the package's generated files (man pages, systemd unit) into
    /// a directory; used by packaging/build-deb.
    #[command(hide = true)]
    PackageFiles {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// The command line definition, for the man pages.
pub fn command() -> clap::Command {
    Cli::command()
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
        && matches!(
            command,
            Command::Template(_) | Command::Node(_) | Command::PackageFiles { .. }
        )
    {
        let _ = logging::init(&LogSetup::stderr(if cli.debug { "debug" } else { "warn" }));
        if let Command::PackageFiles { out } = command {
            return match crate::package::write_files(out) {
                Ok(files) => {
                    for f in files {
                        println!("{}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kuryr: {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            };
        }
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
    let command = cli.command.unwrap_or(Command::Server {
        drop_capabilities: false,
    });
    let dropped = match drop_capabilities(&command) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kuryr: --drop-capabilities: {e}");
            return ExitCode::FAILURE;
        }
    };
    let setup = match command {
        Command::Server { .. } => LogSetup::from_config(&config, cli.debug),
        _ => LogSetup::stderr(if cli.debug { "debug" } else { "warn" }),
    };
    if let Err(e) = logging::init(&setup) {
        eprintln!("kuryr: {e}");
        return ExitCode::from(2);
    }
    if let Some(d) = dropped {
        tracing::info!("{}", d.describe());
    }

    match command {
        Command::Template(_) | Command::Node(_) | Command::PackageFiles { .. } => ExitCode::FAILURE,
        Command::CheckConfig => check_config(&config),
        Command::Status { json, docker_host } => {
            run_async(crate::status::run(config, docker_host, json))
        }
        Command::Server { .. } => run_async(async move {
            match crate::daemon::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The whole cause chain: the TLS or connect error, not
                    // only "error sending request".
                    tracing::error!("{}", kuryr_openstack::chain(&e));
                    ExitCode::FAILURE
                }
            }
        }),
    }
}

/// `server --drop-capabilities`: keep only CAP_NET_ADMIN. Called before
/// any thread starts (capabilities are per thread, inherited by the
/// threads started later).
fn drop_capabilities(command: &Command) -> std::io::Result<Option<crate::capabilities::Dropped>> {
    use crate::capabilities::{CAP_NET_ADMIN, keep_only};
    match command {
        Command::Server {
            drop_capabilities: true,
        } => keep_only(1 << CAP_NET_ADMIN).map(Some),
        _ => Ok(None),
    }
}

fn check_config(config: &crate::config::Config) -> ExitCode {
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

/// Run `work` on a multi-threaded runtime.
fn run_async(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("kuryr: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

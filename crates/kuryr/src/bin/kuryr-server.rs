//! `kuryr-server`: kuryr-libnetwork's executable name, so existing service
//! units (`kuryr-server --config-file /etc/kuryr/kuryr.conf`) keep working.

fn main() -> std::process::ExitCode {
    kuryr::cli::main()
}

//! `kuryr`: the Docker network + IPAM driver daemon and its node tooling.
//! See [`kuryr::cli`].

fn main() -> std::process::ExitCode {
    kuryr::cli::main()
}

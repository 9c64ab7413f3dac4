//! The files of the Debian package that come from the code, written by
//! `kuryr package-files --out DIR` (`packaging/build-deb` runs it before
//! `cargo deb`): a man page per command, generated from the command line
//! definitions, and the systemd unit, rendered by the same function as the
//! one `kuryr node setup` writes (only the binary's path differs). The
//! rest (example `kuryr.conf`, copyright, changelog, maintainer scripts)
//! is in `packaging/`; the file list is `[package.metadata.deb]` in
//! `crates/kuryr/Cargo.toml`.

use std::io;
use std::path::{Path, PathBuf};

use crate::cluster::systemd;
use crate::paths;

/// Where the package puts the binaries.
pub const BINARY: &str = "/usr/bin/kuryr";
/// Where the package puts the unit (cargo-deb's choice, systemd's
/// directory for packaged units).
pub const UNIT: &str = "/usr/lib/systemd/system/kuryr.service";
/// The socket directory the packaged unit may write.
pub const SOCKET_DIR: &str = "/run/docker/plugins";

/// The packaged unit: the node-setup unit with the package's binary.
pub fn unit() -> String {
    let header = "Installed by the kuryr Debian package. Override with\n\
                  `systemctl edit kuryr`; configuration: /etc/kuryr/kuryr.conf.";
    systemd::kuryr_service(
        header,
        Path::new(BINARY),
        Path::new(paths::KURYR_CONF),
        &[],
        Some(Path::new(SOCKET_DIR)),
    )
}

/// Man pages: `kuryr.1`, `kuryr-server.1` and one per subcommand
/// (`kuryr-node-setup.1`, ...), as (file name, roff text).
pub fn man_pages() -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    let top = crate::cli::command();
    add_pages(&top, "kuryr", &mut pages)?;
    let server = top
        .clone()
        .name("kuryr-server")
        .bin_name("kuryr-server")
        .about("Docker network and IPAM driver backed by OpenStack Neutron (kuryr-libnetwork's command name)");
    let mut page = Vec::new();
    clap_mangen::Man::new(server).render(&mut page)?;
    pages.push(("kuryr-server.1".into(), page));
    Ok(pages)
}

fn add_pages(
    cmd: &clap::Command,
    name: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> io::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let cmd = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    pages.push((format!("{name}.1"), page));
    for sub in cmd.get_subcommands() {
        add_pages(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}

/// Write the generated files into `dir` (`man/*.1`, `kuryr.service`);
/// returns their paths.
pub fn write_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    let mut written = Vec::new();
    for (name, page) in man_pages()? {
        let path = man.join(name);
        std::fs::write(&path, page)?;
        written.push(path);
    }
    let path = dir.join(paths::KURYR_UNIT_NAME);
    std::fs::write(&path, unit())?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example configuration the package installs.
    const EXAMPLE_CONF: &str = include_str!("../../../packaging/kuryr.conf");
    /// The package's file list.
    const MANIFEST: &str = include_str!("../Cargo.toml");

    #[test]
    fn the_example_configuration_is_valid_and_fully_known() {
        let c: crate::config::Config = EXAMPLE_CONF.parse().expect("packaging/kuryr.conf parses");
        assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
        assert!(c.session_config().is_ok(), "the example names a credential");
        assert!(
            c.metrics.listen.is_none(),
            "metrics are off unless configured"
        );
    }

    #[test]
    fn the_manifest_installs_what_the_code_names() {
        for dest in [
            &BINARY[1..],
            "usr/bin/kuryr-server",
            &paths::KURYR_CONF[1..],
            "usr/share/man/man1/",
        ] {
            assert!(
                MANIFEST.contains(&format!("\"{dest}")),
                "Cargo.toml [package.metadata.deb] lacks {dest}"
            );
        }
    }

    #[test]
    fn the_manifest_packs_the_unit_by_its_name() {
        let name = paths::KURYR_UNIT_NAME.trim_end_matches(".service");
        assert!(MANIFEST.contains(&format!("unit-name = \"{name}\"")));
        assert!(UNIT.ends_with(paths::KURYR_UNIT_NAME));
    }

    #[test]
    fn man_pages_cover_every_visible_command() {
        let pages = man_pages().unwrap();
        let names: Vec<_> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "kuryr.1",
            "kuryr-server.1",
            "kuryr-status.1",
            "kuryr-node-setup.1",
            "kuryr-template-validate.1",
            "kuryr-check-config.1",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains("package-files")),
            "{names:?}"
        );
        let status =
            String::from_utf8_lossy(&pages.iter().find(|(n, _)| n == "kuryr-status.1").unwrap().1)
                .into_owned();
        assert!(status.contains("\\-\\-json"), "{status}");
    }

    #[test]
    fn the_packaged_unit_runs_the_packaged_binary() {
        let u = unit();
        assert!(
            u.contains("ExecStart=/usr/bin/kuryr --config-file /etc/kuryr/kuryr.conf server"),
            "{u}"
        );
        assert!(u.contains("RuntimeDirectory=docker/plugins"), "{u}");
    }
}

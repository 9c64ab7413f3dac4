//! `keystone`: where Keystone is and how the nodes trust its certificate.

use std::path::{Path, PathBuf};

use kuryr_openstack::Interface;

use super::parse_url;
use crate::cluster::json::Fields;

/// Where Keystone is and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneParams {
    /// Keystone v3 URL.
    pub auth_url: String,
    pub region_name: Option<String>,
    /// Which catalog interface reaches Neutron from the nodes.
    pub interface: Interface,
    pub ca: Option<CaBundle>,
}

/// The CA bundle that signs the cloud's API certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaBundle {
    /// A file already on the nodes.
    Path(PathBuf),
    /// PEM text, written to `/etc/kuryr/ca.pem` by node setup.
    Pem(String),
}

/// Read `keystone`; `None` when it is missing or has no usable `auth_url`.
pub(super) fn read(f: &mut Fields<'_>) -> Option<KeystoneParams> {
    let Some(obj) = f.object("keystone") else {
        if f.get("keystone").is_none() {
            f.problem(
                "keystone",
                "keystone is missing: the nodes need keystone.auth_url",
            );
        }
        return None;
    };
    let mut g = Fields::new(obj, "keystone", f.out);
    g.reject_unknown(
        &["auth_url", "region_name", "interface", "ca_file", "ca_pem"],
        "keystone",
    );
    let auth_url = read_auth_url(&mut g);
    let region_name = g.opt_name("region_name", 255);
    let interface = read_interface(&mut g);
    let ca = read_ca(&mut g);
    Some(KeystoneParams {
        auth_url: auth_url?,
        region_name,
        interface,
        ca,
    })
}

/// `auth_url`: an http(s) URL of Keystone v3.
fn read_auth_url(g: &mut Fields<'_>) -> Option<String> {
    let url = g.req_str("auth_url")?;
    let ok = parse_url(&url).filter(|u| matches!(u.scheme(), "http" | "https"));
    if ok.is_none() {
        g.problem(
            "auth_url",
            format!("keystone.auth_url {url:?} is not an http:// or https:// URL"),
        );
    } else if url.trim_end_matches('/').ends_with("/v2.0") {
        g.problem(
            "auth_url",
            "keystone.auth_url points at Keystone v2.0, which is gone; use the /v3 endpoint",
        );
    }
    Some(url)
}

/// `interface`: the catalog interface, public by default.
fn read_interface(g: &mut Fields<'_>) -> Interface {
    let Some(s) = g.opt_str("interface") else {
        return Interface::Public;
    };
    s.parse().unwrap_or_else(|_| {
        g.problem(
            "interface",
            format!("keystone.interface {s:?} is not one of public, internal, admin"),
        );
        Interface::Public
    })
}

/// `ca_file` or `ca_pem`, not both.
fn read_ca(g: &mut Fields<'_>) -> Option<CaBundle> {
    match (g.opt_str("ca_file"), g.opt_str("ca_pem")) {
        (Some(_), Some(_)) => {
            g.problem(
                "ca_file",
                "set keystone.ca_file or keystone.ca_pem, not both",
            );
            None
        }
        (Some(path), None) => ca_file(g, path),
        (None, Some(pem)) => ca_pem(g, pem),
        (None, None) => None,
    }
}

fn ca_file(g: &mut Fields<'_>, path: String) -> Option<CaBundle> {
    if Path::new(&path).is_absolute() && !path.contains('\n') {
        return Some(CaBundle::Path(PathBuf::from(path)));
    }
    g.problem(
        "ca_file",
        format!("keystone.ca_file {path:?} must be an absolute path on the nodes"),
    );
    None
}

fn ca_pem(g: &mut Fields<'_>, mut pem: String) -> Option<CaBundle> {
    if !(pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("-----END CERTIFICATE-----")) {
        g.problem(
            "ca_pem",
            "keystone.ca_pem must hold PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        );
        return None;
    }
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    Some(CaBundle::Pem(pem))
}

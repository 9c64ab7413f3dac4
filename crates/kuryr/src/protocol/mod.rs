//! The libnetwork remote NetworkDriver + IpamDriver wire protocol, as
//! dockerd 20.10 speaks it.
//!
//! Decoding is lenient where Docker is loose (missing keys, `null` maps,
//! empty bodies, unknown keys) and strict where a wrong value would be acted
//! on (IDs, CIDRs, IP addresses). Responses use Docker's field names.
//!
//! [`PluginCall::parse`] turns a (path, body) pair into one typed call, or
//! a [`ParseError`]: which path accepts which body is decided here, before
//! the driver sees anything, and is unit-tested here.

mod call;

pub use call::{Method, ParseError, PluginCall, ProgramRequest, Response};

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Capability option key for the driver's generic (`-o`) options.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";
/// Capability option key for IPv6 in CreateNetwork.
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// Endpoint option carrying `--expose`d ports.
pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
/// Endpoint option carrying `-p` port mappings.
pub const PORT_MAP: &str = "com.docker.network.portmap";
/// IPAM option marking a gateway address request.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
/// Value of [`REQUEST_ADDRESS_TYPE`] for the gateway.
pub const GATEWAY_ADDRESS_TYPE: &str = "com.docker.network.gateway";
/// IPAM pool data key that supplies the gateway.
pub const POOL_GATEWAY: &str = "com.docker.network.gateway";
/// IPAM option with the endpoint's MAC (only if RequiresMACAddress).
pub const IPAM_MAC_OPTION: &str = "com.docker.network.endpoint.macaddress";

/// A request body that could not be decoded; answered with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {0}")]
pub struct BadRequest(pub String);

/// Decode a request body. An empty body reads as `{}`, so calls without
/// arguments work and missing required keys give a precise message.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    let empty = body.iter().all(u8::is_ascii_whitespace);
    let body = if empty { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| {
        if empty {
            // dockerd's plugin client resends a call whose connection broke
            // (the driver restarted mid-call) without its body.
            BadRequest(format!(
                "{e} (the request had no body: dockerd resends a call without its body when \
                 the driver restarted during it; run the command again)"
            ))
        } else {
            BadRequest(e.to_string())
        }
    })
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A libnetwork object ID: 64 lowercase hex characters (local networks and
/// endpoints) or 25 alphanumerics (swarm-allocated networks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DockerId(String);

impl DockerId {
    pub fn parse(s: &str) -> Result<DockerId, BadRequest> {
        let ok = match s.len() {
            64 => s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            25 => s
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
            _ => false,
        };
        if ok {
            Ok(DockerId(s.to_string()))
        } else {
            Err(BadRequest(format!(
                "{s:?} is not a Docker ID (64 hex or 25 alphanumeric characters)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// First `n` characters (IDs are ASCII).
    pub fn prefix(&self, n: usize) -> &str {
        &self.0[..n.min(self.0.len())]
    }
}

impl std::fmt::Display for DockerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DockerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DockerId::parse(&s).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// A PoolID: the UUID of a Neutron subnet pool. Checked before it is used
/// in a URL, so `..` or `/` in a PoolID can never address another
/// resource, and a garbled one is a 400 rather than a Neutron error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PoolId(String);

impl PoolId {
    pub fn parse(s: &str) -> Result<PoolId, BadRequest> {
        let uuid = s.len() == 36
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if uuid {
            Ok(PoolId(s.to_string()))
        } else {
            Err(BadRequest(format!(
                "PoolID {s:?} is not a Neutron subnet pool ID (a UUID)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PoolId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PoolId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PoolId::parse(&s).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// An optional CIDR field where Docker sends `""` for "not set".
fn opt_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpNet>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<IpNet>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a CIDR"))),
    }
}

/// An optional plain IP field where Docker sends `""` for "not set".
fn opt_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<IpAddr>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IP address"))),
    }
}

/// A required plain IP field.
fn ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<IpAddr>()
        .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IP address")))
}

fn opt_mac<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            let valid = parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
            if valid {
                Ok(Some(s.to_ascii_lowercase()))
            } else {
                Err(serde::de::Error::custom(format!(
                    "{s:?} is not a MAC address"
                )))
            }
        }
    }
}

fn cidr<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<IpNet>()
        .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a CIDR")))
}

// ---------------------------------------------------------------- handshake

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivateResponse {
    #[serde(rename = "Implements")]
    pub implements: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkCapabilities {
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "ConnectivityScope")]
    pub connectivity_scope: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpamCapabilities {
    #[serde(rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
    #[serde(rename = "RequiresRequestReplay")]
    pub requires_request_replay: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressSpaces {
    #[serde(rename = "LocalDefaultAddressSpace")]
    pub local: String,
    #[serde(rename = "GlobalDefaultAddressSpace")]
    pub global: String,
}

// ---------------------------------------------------------------- networks

/// One element of `IPv4Data`/`IPv6Data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IpamData {
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    #[serde(rename = "Pool", deserialize_with = "cidr")]
    pub pool: IpNet,
    /// CIDR with host bits (`10.0.0.1/24`), as IPAM returned it.
    #[serde(rename = "Gateway", default, deserialize_with = "opt_cidr")]
    pub gateway: Option<IpNet>,
    #[serde(rename = "AuxAddresses", default, deserialize_with = "null_as_default")]
    pub aux_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Map<String, Value>,
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

impl CreateNetworkRequest {
    /// The `-o key=value` driver options. Values that are not strings are
    /// rendered as JSON text so nothing is silently dropped.
    pub fn generic_options(&self) -> BTreeMap<String, String> {
        string_map(self.options.get(GENERIC_OPTIONS))
    }
}

/// A JSON object of strings (or other scalars) as a string map.
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NetworkIdRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
}

/// AllocateNetwork (swarm managers, global-scope drivers only).
#[derive(Debug, Clone, Deserialize)]
pub struct AllocateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    /// The pools the manager's IPAM allocated (`AddressSpace` is empty).
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocateNetworkResponse {
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
}

// ---------------------------------------------------------------- endpoints

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EndpointInterface {
    #[serde(rename = "Address", default, deserialize_with = "opt_cidr")]
    pub address: Option<IpNet>,
    #[serde(rename = "AddressIPv6", default, deserialize_with = "opt_cidr")]
    pub address_ipv6: Option<IpNet>,
    #[serde(rename = "MacAddress", default, deserialize_with = "opt_mac")]
    pub mac_address: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    #[serde(rename = "Interface", default, deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Map<String, Value>,
}

/// Fields Docker did not have and the driver fills in.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateEndpointInterface {
    #[serde(rename = "MacAddress", skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateEndpointResponse {
    #[serde(rename = "Interface")]
    pub interface: CreateEndpointInterface,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// Not used: the sandbox does not exist yet at `docker run` time.
    #[serde(rename = "SandboxKey", default, deserialize_with = "null_as_default")]
    pub sandbox_key: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceName {
    #[serde(rename = "SrcName")]
    pub src_name: String,
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// A route handed to the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaticRoute {
    #[serde(rename = "Destination")]
    pub destination: String,
    /// 0 = via NextHop, 1 = connected (on the interface).
    #[serde(rename = "RouteType")]
    pub route_type: u8,
    #[serde(rename = "NextHop", skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinResponse {
    #[serde(rename = "InterfaceName")]
    pub interface_name: InterfaceName,
    #[serde(rename = "Gateway", skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "Option::is_none")]
    pub gateway_ipv6: Option<String>,
    #[serde(rename = "StaticRoutes", skip_serializing_if = "Vec::is_empty")]
    pub static_routes: Vec<StaticRoute>,
    #[serde(rename = "DisableGatewayService")]
    pub disable_gateway_service: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointOperInfoResponse {
    #[serde(rename = "Value")]
    pub value: BTreeMap<String, Value>,
}

/// One `--expose`d port: `{"Proto": 6, "Port": 80}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct ExposedPort {
    #[serde(rename = "Proto")]
    pub proto: u8,
    #[serde(rename = "Port")]
    pub port: u16,
}

/// Exposed ports from Join/ProgramExternalConnectivity/CreateEndpoint options.
pub fn exposed_ports(options: &Map<String, Value>) -> Result<Vec<ExposedPort>, BadRequest> {
    match options.get(EXPOSED_PORTS) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| BadRequest(format!("{EXPOSED_PORTS}: {e}"))),
    }
}

// ---------------------------------------------------------------- IPAM

#[derive(Debug, Clone, Deserialize)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    #[serde(rename = "Pool", default, deserialize_with = "opt_cidr")]
    pub pool: Option<IpNet>,
    #[serde(rename = "SubPool", default, deserialize_with = "opt_cidr")]
    pub sub_pool: Option<IpNet>,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Pool")]
    pub pool: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleasePoolRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestAddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
    #[serde(rename = "Address", default, deserialize_with = "opt_ip")]
    pub address: Option<IpAddr>,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

impl RequestAddressRequest {
    pub fn is_gateway(&self) -> bool {
        self.options.get(REQUEST_ADDRESS_TYPE).map(String::as_str) == Some(GATEWAY_ADDRESS_TYPE)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestAddressResponse {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseAddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
    #[serde(rename = "Address", deserialize_with = "ip")]
    pub address: IpAddr,
}

/// The error body for both interfaces. IPAM's 200-replies would use
/// `Error`, but errors are always sent with a non-200 status, where dockerd
/// reads `Err` for both.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorResponse {
    #[serde(rename = "Err")]
    pub err: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NID: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
    const POOL: &str = "3f0c6d2e-8a41-4b7e-9d3c-5a6b7c8d9e0f";

    #[test]
    fn create_network_as_docker_sends_it() {
        let body = format!(
            r#"{{"NetworkID":"{NID}","Options":{{"com.docker.network.enable_ipv6":false,
            "com.docker.network.generic":{{"neutron.net.uuid":"abc","mtu":1400}}}},
            "IPv4Data":[{{"AddressSpace":"no_address_space","Pool":"10.10.0.0/24","Gateway":"10.10.0.1/24","AuxAddresses":{{"r":"10.10.0.2/24"}}}}],
            "IPv6Data":[]}}
"#
        );
        let req: CreateNetworkRequest = decode(body.as_bytes()).unwrap();
        assert_eq!(req.network_id.prefix(8), "9c1f0d7a");
        assert_eq!(req.ipv4_data[0].pool.to_string(), "10.10.0.0/24");
        assert_eq!(
            req.ipv4_data[0].gateway.unwrap().addr().to_string(),
            "10.10.0.1"
        );
        let opts = req.generic_options();
        assert_eq!(opts["neutron.net.uuid"], "abc");
        assert_eq!(opts["mtu"], "1400");
    }

    #[test]
    fn nulls_and_missing_keys_are_tolerated() {
        let body = format!(r#"{{"NetworkID":"{NID}","Options":null,"IPv4Data":null}}"#);
        let req: CreateNetworkRequest = decode(body.as_bytes()).unwrap();
        assert!(req.ipv4_data.is_empty() && req.ipv6_data.is_empty());
        let req: RequestAddressRequest =
            decode(format!(r#"{{"PoolID":"{POOL}","Address":"","Options":null}}"#).as_bytes())
                .unwrap();
        assert!(req.address.is_none() && !req.is_gateway());
        let req: RequestPoolRequest =
            decode(b"{\"AddressSpace\":\"x\",\"Pool\":\"\",\"V6\":false}").unwrap();
        assert!(req.pool.is_none() && req.options.is_empty());
    }

    #[test]
    fn bad_values_are_rejected_with_reason() {
        let err = decode::<NetworkIdRequest>(br#"{"NetworkID":"../../etc"}"#).unwrap_err();
        assert!(err.0.contains("not a Docker ID"), "{err}");
        let err = decode::<NetworkIdRequest>(b"{}").unwrap_err();
        assert!(err.0.contains("NetworkID"), "{err}");
        let err = decode::<RequestAddressRequest>(
            format!(r#"{{"PoolID":"{POOL}","Address":"10.0.0.300"}}"#).as_bytes(),
        )
        .unwrap_err();
        assert!(err.0.contains("not an IP"), "{err}");
        let body = format!(
            r#"{{"NetworkID":"{NID}","EndpointID":"{NID}","Interface":{{"MacAddress":"zz"}}}}"#
        );
        assert!(decode::<CreateEndpointRequest>(body.as_bytes()).is_err());
        assert!(decode::<NetworkIdRequest>(b"{\"NetworkID\":").is_err());
    }

    #[test]
    fn swarm_ids_are_accepted() {
        assert!(DockerId::parse("3n6ixqz7b4ms9ec2tmgoya1kk").is_ok());
        assert!(DockerId::parse(&NID.to_uppercase()).is_err());
    }

    #[test]
    fn empty_body_decodes_as_empty_object() {
        #[derive(Deserialize)]
        struct Nothing {}
        assert!(decode::<Nothing>(b"").is_ok());
        assert!(decode::<Nothing>(b"\n").is_ok());
    }

    #[test]
    fn an_empty_body_where_fields_are_needed_says_why() {
        let e = decode::<NetworkIdRequest>(b"").unwrap_err().to_string();
        assert!(e.contains("missing field `NetworkID`"), "{e}");
        assert!(e.contains("the request had no body"), "{e}");
        let e = decode::<NetworkIdRequest>(b"{}").unwrap_err().to_string();
        assert!(!e.contains("no body"), "{e}");
    }

    #[test]
    fn join_response_shape() {
        let r = JoinResponse {
            interface_name: InterfaceName {
                src_name: "t_c0123456789a".into(),
                dst_prefix: "eth".into(),
            },
            gateway: Some("10.0.0.1".into()),
            gateway_ipv6: None,
            static_routes: vec![],
            disable_gateway_service: true,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"InterfaceName": {"SrcName": "t_c0123456789a", "DstPrefix": "eth"},
                "Gateway": "10.0.0.1", "DisableGatewayService": true})
        );
    }
}

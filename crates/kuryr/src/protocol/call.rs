//! One typed value per plugin call: [`PluginCall::parse`] decides which
//! path accepts which body, so the driver only ever sees well-formed calls
//! and the server turns one [`Response`] (or error) into HTTP in one place.
//!
//! Everything a request can get wrong by itself (a missing key, a garbled
//! ID, a PoolID that is not a UUID, a CIDR with host bits where an address
//! is expected, an exposed port that is not a port) is refused here, with
//! a [`ParseError`], before any Neutron call.

use serde::Serialize;

use super::{
    ActivateResponse, AddressSpaces, AllocateNetworkRequest, AllocateNetworkResponse, BadRequest,
    CreateEndpointRequest, CreateEndpointResponse, CreateNetworkRequest, DockerId,
    EndpointOperInfoResponse, EndpointRequest, ExposedPort, IpamCapabilities, JoinRequest,
    JoinResponse, NetworkCapabilities, NetworkIdRequest, PoolId, ReleaseAddressRequest,
    ReleasePoolRequest, RequestAddressRequest, RequestAddressResponse, RequestPoolRequest,
    RequestPoolResponse, decode, exposed_ports,
};

/// Why a request was not turned into a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No such method (HTTP 404: dockerd then treats an optional call as
    /// not implemented).
    #[error("unknown plugin method {0}")]
    UnknownMethod(String),
    /// The body does not fit the method (HTTP 400).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
}

macro_rules! methods {
    ($($name:ident => $path:literal,)*) => {
        /// The methods of the libnetwork remote NetworkDriver and IpamDriver
        /// APIs that Kuryr implements.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Method {
            $($name,)*
        }

        impl Method {
            /// Every method, in the order of the API documents.
            pub const ALL: &'static [Method] = &[$(Method::$name,)*];

            /// The URL path dockerd posts to.
            pub fn path(self) -> &'static str {
                match self {
                    $(Method::$name => $path,)*
                }
            }
        }
    };
}

methods! {
    Activate => "/Plugin.Activate",
    NetworkCapabilities => "/NetworkDriver.GetCapabilities",
    CreateNetwork => "/NetworkDriver.CreateNetwork",
    DeleteNetwork => "/NetworkDriver.DeleteNetwork",
    AllocateNetwork => "/NetworkDriver.AllocateNetwork",
    FreeNetwork => "/NetworkDriver.FreeNetwork",
    CreateEndpoint => "/NetworkDriver.CreateEndpoint",
    EndpointOperInfo => "/NetworkDriver.EndpointOperInfo",
    DeleteEndpoint => "/NetworkDriver.DeleteEndpoint",
    Join => "/NetworkDriver.Join",
    Leave => "/NetworkDriver.Leave",
    ProgramExternalConnectivity => "/NetworkDriver.ProgramExternalConnectivity",
    RevokeExternalConnectivity => "/NetworkDriver.RevokeExternalConnectivity",
    DiscoverNew => "/NetworkDriver.DiscoverNew",
    DiscoverDelete => "/NetworkDriver.DiscoverDelete",
    IpamCapabilities => "/IpamDriver.GetCapabilities",
    DefaultAddressSpaces => "/IpamDriver.GetDefaultAddressSpaces",
    RequestPool => "/IpamDriver.RequestPool",
    ReleasePool => "/IpamDriver.ReleasePool",
    RequestAddress => "/IpamDriver.RequestAddress",
    ReleaseAddress => "/IpamDriver.ReleaseAddress",
}

impl Method {
    /// The method of a URL path, matched exactly.
    pub fn from_path(path: &str) -> Option<Method> {
        Method::ALL.iter().copied().find(|m| m.path() == path)
    }

    /// `NetworkDriver.CreateEndpoint`: the path without its slash, for logs.
    pub fn name(self) -> &'static str {
        &self.path()[1..]
    }

    /// Answered from configuration alone: never waits for start-up.
    pub fn is_stateless(self) -> bool {
        matches!(
            self,
            Method::Activate
                | Method::NetworkCapabilities
                | Method::IpamCapabilities
                | Method::DefaultAddressSpaces
                | Method::DiscoverNew
                | Method::DiscoverDelete
        )
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `ProgramExternalConnectivity`: the endpoint and its `--expose`d ports.
#[derive(Debug, Clone)]
pub struct ProgramRequest {
    pub network_id: DockerId,
    pub endpoint_id: DockerId,
    pub exposed: Vec<ExposedPort>,
}

/// One decoded plugin call.
#[derive(Debug, Clone)]
pub enum PluginCall {
    Activate,
    NetworkCapabilities,
    CreateNetwork(CreateNetworkRequest),
    DeleteNetwork(NetworkIdRequest),
    AllocateNetwork(AllocateNetworkRequest),
    FreeNetwork(NetworkIdRequest),
    CreateEndpoint(CreateEndpointRequest),
    EndpointOperInfo(EndpointRequest),
    DeleteEndpoint(EndpointRequest),
    Join(JoinRequest),
    Leave(EndpointRequest),
    ProgramExternalConnectivity(ProgramRequest),
    RevokeExternalConnectivity(EndpointRequest),
    DiscoverNew,
    DiscoverDelete,
    IpamCapabilities,
    DefaultAddressSpaces,
    RequestPool(RequestPoolRequest),
    ReleasePool(ReleasePoolRequest),
    RequestAddress(RequestAddressRequest),
    ReleaseAddress(ReleaseAddressRequest),
}

impl PluginCall {
    /// Decode the body of a call to `path`. An unknown path is refused
    /// without looking at the body.
    pub fn parse(path: &str, body: &[u8]) -> Result<PluginCall, ParseError> {
        let method =
            Method::from_path(path).ok_or_else(|| ParseError::UnknownMethod(path.to_string()))?;
        Ok(match method {
            Method::Activate => PluginCall::Activate,
            Method::NetworkCapabilities => PluginCall::NetworkCapabilities,
            Method::CreateNetwork => PluginCall::CreateNetwork(decode(body)?),
            Method::DeleteNetwork => PluginCall::DeleteNetwork(decode(body)?),
            Method::AllocateNetwork => PluginCall::AllocateNetwork(decode(body)?),
            Method::FreeNetwork => PluginCall::FreeNetwork(decode(body)?),
            Method::CreateEndpoint => PluginCall::CreateEndpoint(decode(body)?),
            Method::EndpointOperInfo => PluginCall::EndpointOperInfo(decode(body)?),
            Method::DeleteEndpoint => PluginCall::DeleteEndpoint(decode(body)?),
            Method::Join => PluginCall::Join(decode(body)?),
            Method::Leave => PluginCall::Leave(decode(body)?),
            Method::ProgramExternalConnectivity => {
                let req: EndpointRequest = decode(body)?;
                PluginCall::ProgramExternalConnectivity(ProgramRequest {
                    exposed: exposed_ports(&req.options)?,
                    network_id: req.network_id,
                    endpoint_id: req.endpoint_id,
                })
            }
            Method::RevokeExternalConnectivity => {
                PluginCall::RevokeExternalConnectivity(decode(body)?)
            }
            // Notifications of other nodes: nothing to read.
            Method::DiscoverNew => PluginCall::DiscoverNew,
            Method::DiscoverDelete => PluginCall::DiscoverDelete,
            Method::IpamCapabilities => PluginCall::IpamCapabilities,
            Method::DefaultAddressSpaces => PluginCall::DefaultAddressSpaces,
            Method::RequestPool => PluginCall::RequestPool(decode(body)?),
            Method::ReleasePool => PluginCall::ReleasePool(decode(body)?),
            Method::RequestAddress => PluginCall::RequestAddress(decode(body)?),
            Method::ReleaseAddress => PluginCall::ReleaseAddress(decode(body)?),
        })
    }

    pub fn method(&self) -> Method {
        match self {
            PluginCall::Activate => Method::Activate,
            PluginCall::NetworkCapabilities => Method::NetworkCapabilities,
            PluginCall::CreateNetwork(_) => Method::CreateNetwork,
            PluginCall::DeleteNetwork(_) => Method::DeleteNetwork,
            PluginCall::AllocateNetwork(_) => Method::AllocateNetwork,
            PluginCall::FreeNetwork(_) => Method::FreeNetwork,
            PluginCall::CreateEndpoint(_) => Method::CreateEndpoint,
            PluginCall::EndpointOperInfo(_) => Method::EndpointOperInfo,
            PluginCall::DeleteEndpoint(_) => Method::DeleteEndpoint,
            PluginCall::Join(_) => Method::Join,
            PluginCall::Leave(_) => Method::Leave,
            PluginCall::ProgramExternalConnectivity(_) => Method::ProgramExternalConnectivity,
            PluginCall::RevokeExternalConnectivity(_) => Method::RevokeExternalConnectivity,
            PluginCall::DiscoverNew => Method::DiscoverNew,
            PluginCall::DiscoverDelete => Method::DiscoverDelete,
            PluginCall::IpamCapabilities => Method::IpamCapabilities,
            PluginCall::DefaultAddressSpaces => Method::DefaultAddressSpaces,
            PluginCall::RequestPool(_) => Method::RequestPool,
            PluginCall::ReleasePool(_) => Method::ReleasePool,
            PluginCall::RequestAddress(_) => Method::RequestAddress,
            PluginCall::ReleaseAddress(_) => Method::ReleaseAddress,
        }
    }

    /// The Docker network this call is about, if any.
    pub fn network_id(&self) -> Option<&DockerId> {
        match self {
            PluginCall::CreateNetwork(r) => Some(&r.network_id),
            PluginCall::DeleteNetwork(r) | PluginCall::FreeNetwork(r) => Some(&r.network_id),
            PluginCall::AllocateNetwork(r) => Some(&r.network_id),
            PluginCall::CreateEndpoint(r) => Some(&r.network_id),
            PluginCall::EndpointOperInfo(r)
            | PluginCall::DeleteEndpoint(r)
            | PluginCall::Leave(r)
            | PluginCall::RevokeExternalConnectivity(r) => Some(&r.network_id),
            PluginCall::Join(r) => Some(&r.network_id),
            PluginCall::ProgramExternalConnectivity(r) => Some(&r.network_id),
            _ => None,
        }
    }

    /// The Docker endpoint this call is about, if any.
    pub fn endpoint_id(&self) -> Option<&DockerId> {
        match self {
            PluginCall::CreateEndpoint(r) => Some(&r.endpoint_id),
            PluginCall::EndpointOperInfo(r)
            | PluginCall::DeleteEndpoint(r)
            | PluginCall::Leave(r)
            | PluginCall::RevokeExternalConnectivity(r) => Some(&r.endpoint_id),
            PluginCall::Join(r) => Some(&r.endpoint_id),
            PluginCall::ProgramExternalConnectivity(r) => Some(&r.endpoint_id),
            _ => None,
        }
    }

    /// The IPAM pool this call is about, if any.
    pub fn pool_id(&self) -> Option<&PoolId> {
        match self {
            PluginCall::ReleasePool(r) => Some(&r.pool_id),
            PluginCall::RequestAddress(r) => Some(&r.pool_id),
            PluginCall::ReleaseAddress(r) => Some(&r.pool_id),
            _ => None,
        }
    }
}

/// What a successful call answers; `Empty` is `{}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Empty {},
    Activate(ActivateResponse),
    NetworkCapabilities(NetworkCapabilities),
    IpamCapabilities(IpamCapabilities),
    AddressSpaces(AddressSpaces),
    AllocateNetwork(AllocateNetworkResponse),
    CreateEndpoint(CreateEndpointResponse),
    EndpointOperInfo(EndpointOperInfoResponse),
    Join(JoinResponse),
    RequestPool(RequestPoolResponse),
    RequestAddress(RequestAddressResponse),
}

impl Response {
    /// `{}`.
    pub const EMPTY: Response = Response::Empty {};
}

#[cfg(test)]
mod tests;

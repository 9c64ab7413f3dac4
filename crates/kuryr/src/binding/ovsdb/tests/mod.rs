//! Unit tests of the OVSDB client: the wire format alone ([`codec`]), a
//! client against a scripted peer on an in-memory stream ([`rpc`]), and
//! against a private ovsdb-server when Open vSwitch is installed
//! ([`server`]).

mod codec;
mod rpc;
mod server;

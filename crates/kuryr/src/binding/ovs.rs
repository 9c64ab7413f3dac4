//! Open vSwitch for the veth binder: the port plugged into (or removed
//! from) a bridge through the OVSDB client of [`super::ovsdb`], on one
//! connection the binder keeps open, with the settings of [`VethConfig`]
//! (database address, timeout, no-wait) and errors as [`BindError`].

use std::time::Duration;

use tokio::sync::Mutex;

use super::ovsdb::{self, Client, OvsdbError};
use super::{BindError, VethConfig};

/// `external_ids:owner` of the interfaces kuryr plugs.
const OWNER: &str = "kuryr";

/// The `external_ids` the OVS agent matches a port by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfaceIds<'a> {
    pub port_id: &'a str,
    /// Lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: &'a str,
    pub endpoint_id: &'a str,
}

impl IfaceIds<'_> {
    /// The keys and values, as os-vif and kuryr-lib set them.
    pub(crate) fn pairs(&self) -> [(&str, &str); 5] {
        [
            ("iface-id", self.port_id),
            ("attached-mac", self.mac),
            ("iface-status", "active"),
            ("vm-uuid", self.endpoint_id),
            ("owner", OWNER),
        ]
    }
}

/// The binder's way to the OVS database.
#[derive(Debug)]
pub(crate) struct Ovs {
    target: String,
    timeout: Option<Duration>,
    wait: bool,
    /// Opened on first use, reopened when it broke or timed out.
    conn: Mutex<Option<Client>>,
}

impl Ovs {
    pub(crate) fn new(cfg: &VethConfig) -> Ovs {
        Ovs {
            target: cfg.ovs_db.clone().unwrap_or_else(ovsdb::default_target),
            timeout: (cfg.ovs_timeout_secs > 0)
                .then(|| Duration::from_secs(cfg.ovs_timeout_secs.into())),
            wait: !cfg.ovs_no_wait,
            conn: Mutex::new(None),
        }
    }

    /// `--may-exist add-port bridge dev -- set Interface dev external_ids:...`.
    pub(crate) async fn add_port(
        &self,
        bridge: &str,
        dev: &str,
        ids: &IfaceIds<'_>,
    ) -> Result<(), BindError> {
        let pairs = ids.pairs();
        self.run(format!("add-port {dev} to {bridge}"), |c| async move {
            ovsdb::add_port(&c, bridge, dev, &pairs, self.wait).await
        })
        .await
    }

    /// `--if-exists del-port dev...`, in one transaction.
    pub(crate) async fn del_ports(&self, devs: &[String]) -> Result<(), BindError> {
        self.run(format!("del-port {}", devs.join(" ")), |c| async move {
            ovsdb::del_ports(&c, devs, self.wait).await
        })
        .await
    }

    /// The interfaces kuryr plugged (`external_ids:owner=kuryr`): names
    /// and the Neutron port each is for.
    pub(crate) async fn owned_interfaces(
        &self,
    ) -> Result<Vec<(String, Option<String>)>, BindError> {
        self.run(
            "find Interface external_ids:owner=kuryr".into(),
            |c| async move { ovsdb::interfaces_with(&c, &[("owner", OWNER)]).await },
        )
        .await
    }

    /// Run `op` on the open connection, or a new one. A connection that
    /// turns out lost is dropped, and `op` (idempotent) tried once more
    /// on a fresh one if the lost one was an old one: ovsdb-server may
    /// have restarted since the last bind.
    async fn run<T, F, Fut>(&self, action: String, op: F) -> Result<T, BindError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, OvsdbError>>,
    {
        let fail = |source| BindError::Ovs {
            action: action.clone(),
            source,
        };
        let (client, reused) = self.client().await.map_err(fail)?;
        let err = match op(client).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_connection_lost() => e,
            Err(e) => return Err(fail(e)),
        };
        self.forget().await;
        if !reused || matches!(err, OvsdbError::Timeout { .. }) {
            return Err(fail(err));
        }
        tracing::debug!(error = %err, "OVSDB connection lost, reconnecting");
        let (client, _) = self.client().await.map_err(fail)?;
        let result = op(client).await;
        if matches!(&result, Err(e) if e.is_connection_lost()) {
            self.forget().await;
        }
        result.map_err(fail)
    }

    /// The open connection (`true`) or a new one (`false`).
    async fn client(&self) -> Result<(Client, bool), OvsdbError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok((c.clone(), true));
        }
        let c = Client::connect(&self.target, self.timeout).await?;
        *conn = Some(c.clone());
        Ok((c, false))
    }

    async fn forget(&self) {
        self.conn.lock().await.take();
    }
}

#[cfg(test)]
mod tests;

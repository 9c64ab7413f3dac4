//! `--expose`: ProgramExternalConnectivity opens the exposed ports in a
//! security group of their own on the endpoint's port (named as
//! kuryr-libnetwork names it); RevokeExternalConnectivity and
//! DeleteEndpoint remove it.

use kuryr_openstack::Query;
use kuryr_openstack::neutron::{
    Port, PortUpdate, SecurityGroup, SecurityGroupCreate, SecurityGroupRuleCreate,
};
use tracing::info;

use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, Result};
use crate::names;
use crate::protocol::{EndpointRequest, ExposedPort, ProgramRequest};

/// Consecutive ports of one protocol become one rule, as kuryr does.
pub(in crate::driver) fn port_ranges(ports: &[ExposedPort]) -> Vec<(String, u16, u16)> {
    let mut sorted = ports.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<(String, u16, u16)> = Vec::new();
    for p in sorted {
        let proto = match p.proto {
            1 => "icmp".to_string(),
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            132 => "sctp".to_string(),
            n => n.to_string(),
        };
        match out.last_mut() {
            Some((last_proto, _, max))
                if *last_proto == proto && u32::from(*max) + 1 == u32::from(p.port) =>
            {
                *max = p.port;
            }
            _ => out.push((proto, p.port, p.port)),
        }
    }
    out
}

/// The ingress rules opening `exposed` to the port's address families.
fn exposed_rules(sg: &str, port: &Port, exposed: &[ExposedPort]) -> Vec<SecurityGroupRuleCreate> {
    let mut ethertypes = Vec::new();
    if port.fixed_ips.iter().any(|f| !f.ip_address.contains(':')) {
        ethertypes.push("IPv4");
    }
    if port.fixed_ips.iter().any(|f| f.ip_address.contains(':')) {
        ethertypes.push("IPv6");
    }
    let mut rules = Vec::new();
    for (proto, min, max) in port_ranges(exposed) {
        for ethertype in &ethertypes {
            let icmp = proto == "icmp";
            rules.push(SecurityGroupRuleCreate {
                security_group_id: sg.to_string(),
                direction: "ingress".into(),
                ethertype: Some((*ethertype).into()),
                protocol: Some(if icmp && *ethertype == "IPv6" {
                    "ipv6-icmp".into()
                } else {
                    proto.clone()
                }),
                port_range_min: (!icmp).then_some(u32::from(min)),
                port_range_max: (!icmp).then_some(u32::from(max)),
                ..Default::default()
            });
        }
    }
    rules
}

impl Driver {
    pub(in crate::driver) async fn program_external_connectivity(
        &self,
        req: &ProgramRequest,
    ) -> Result<()> {
        if !self.config.process_external_connectivity || req.exposed.is_empty() {
            return Ok(());
        }
        let _guard = self.lock(req.endpoint_id.as_str()).await;
        let ep = self.known_endpoint(&req.endpoint_id).await?;
        let sg = self
            .journaled("ProgramExternalConnectivity", async |j: &mut Journal| {
                let sg = self.exposed_sg(&ep.port, &req.exposed, j).await?;
                if !ep.port.security_groups.contains(&sg) {
                    let mut groups = ep.port.security_groups.clone();
                    groups.push(sg.clone());
                    let updated = self
                        .neutron
                        .update_port(
                            &ep.port.id,
                            &PortUpdate {
                                security_groups: Some(groups),
                                ..Default::default()
                            },
                        )
                        .await?;
                    let mut index = self.index();
                    if let Some(e) = index.endpoint_mut(req.endpoint_id.as_str()) {
                        e.port.security_groups = updated.security_groups;
                    }
                }
                Ok(sg)
            })
            .await?;
        if let Some(e) = self.index().endpoint_mut(req.endpoint_id.as_str()) {
            e.exposed_sg = Some(sg.clone());
        }
        info!(endpoint = %req.endpoint_id, security_group = %sg, "exposed ports opened");
        Ok(())
    }

    /// The port's exposed-ports group: found by name, or made with one
    /// ingress rule per run of ports and address family.
    async fn exposed_sg(
        &self,
        port: &Port,
        exposed: &[ExposedPort],
        j: &mut Journal,
    ) -> Result<String> {
        let name = names::exposed_sg_name(&port.id);
        let existing = self
            .neutron
            .list_security_groups(&Query::new().eq("name", &name))
            .await?;
        if let Some(sg) = existing.into_iter().next() {
            return Ok(sg.id);
        }
        let body = SecurityGroupCreate {
            name: name.clone(),
            description: Some(names::EXPOSED_SG_DESCRIPTION.into()),
            project_id: None,
        };
        let made = self.neutron.create_security_group(&body);
        let lost = Lost::SecurityGroup { name };
        let undo = |g: &SecurityGroup| Undo::DeleteSecurityGroup(g.id.clone());
        let sg = self.create_undoable(j, lost, made, undo).await?;
        for rule in exposed_rules(&sg.id, port, exposed) {
            if let Err(e) = self.neutron.create_security_group_rule(&rule).await
                && !e.is_conflict()
            {
                return Err(e.into());
            }
        }
        Ok(sg.id)
    }

    pub(in crate::driver) async fn revoke_external_connectivity(
        &self,
        req: &EndpointRequest,
    ) -> Result<()> {
        if !self.config.process_external_connectivity {
            return Ok(());
        }
        let _guard = self.lock(req.endpoint_id.as_str()).await;
        let Some(ep) = self.endpoint_entry(&req.endpoint_id).await? else {
            return Ok(());
        };
        // An exposed-ports group is an extra group on the port: without
        // one there is nothing to look up.
        let sg = match &ep.exposed_sg {
            Some(sg) => Some(sg.clone()),
            None if ep.port.security_groups.len() <= 1 => None,
            None => self
                .neutron
                .list_security_groups(&Query::new().eq("name", names::exposed_sg_name(&ep.port.id)))
                .await?
                .into_iter()
                .next()
                .map(|s| s.id),
        };
        if let Some(sg) = sg {
            self.drop_exposed_sg(&ep.port, &sg).await?;
            if let Some(e) = self.index().endpoint_mut(req.endpoint_id.as_str()) {
                e.exposed_sg = None;
                e.port.security_groups.retain(|g| *g != sg);
            }
        }
        Ok(())
    }

    pub(super) async fn drop_exposed_sg(&self, port: &Port, sg: &str) -> Result<()> {
        if port.security_groups.iter().any(|g| g == sg) {
            let groups: Vec<String> = port
                .security_groups
                .iter()
                .filter(|g| *g != sg)
                .cloned()
                .collect();
            match self
                .neutron
                .update_port(
                    &port.id,
                    &PortUpdate {
                        security_groups: Some(groups),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.neutron.delete_security_group(sg).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_group_into_ranges() {
        let p = |proto, port| ExposedPort { proto, port };
        let ranges = port_ranges(&[p(6, 81), p(6, 80), p(17, 53), p(6, 443), p(6, 80)]);
        assert_eq!(
            ranges,
            vec![
                ("tcp".to_string(), 80, 81),
                ("tcp".to_string(), 443, 443),
                ("udp".to_string(), 53, 53)
            ]
        );
    }
}

//! Unit tests of [`super`].

use super::*;

fn pair(ip: &str, mac: Option<&str>) -> AddressPair {
    AddressPair {
        ip_address: ip.into(),
        mac_address: mac.map(str::to_string),
    }
}

const VM_MAC: &str = "fa:16:3e:00:00:01";

#[test]
fn pairs_are_added_once_and_others_kept() {
    let user = pair("192.168.0.10", Some("fa:16:3e:aa:aa:aa"));
    let vip = pair("10.0.0.0/28", None);
    let ours = [
        pair("10.0.0.5", Some("fa:16:3e:00:00:05")),
        pair("fd00::5", Some("fa:16:3e:00:00:05")),
    ];
    let merged = merge_pairs(&[user.clone(), vip.clone()], &ours, VM_MAC).unwrap();
    assert_eq!(
        merged,
        vec![user.clone(), vip.clone(), ours[0].clone(), ours[1].clone()]
    );
    // Again: nothing to do (idempotent), whatever the spelling.
    assert_eq!(merge_pairs(&merged, &ours, VM_MAC), None);
    let spelled = [
        pair("10.0.0.5/32", Some("FA:16:3E:00:00:05")),
        pair("fd00::5/128", Some("fa:16:3e:00:00:05")),
    ];
    assert_eq!(merge_pairs(&spelled, &ours, VM_MAC), None);
    // Half there: only the missing one is added.
    let half = merge_pairs(&[ours[0].clone()], &ours, VM_MAC).unwrap();
    assert_eq!(half, vec![ours[0].clone(), ours[1].clone()]);
    // Same IP with another MAC is another pair.
    let other_mac = pair("10.0.0.5", Some("fa:16:3e:99:99:99"));
    let merged = merge_pairs(std::slice::from_ref(&other_mac), &ours[..1], VM_MAC).unwrap();
    assert_eq!(merged, vec![other_mac, ours[0].clone()]);
}

#[test]
fn pairs_without_mac_mean_the_vm_ports_mac() {
    // ipvlan: the container's frames carry the VM port's MAC.
    let ours = [pair("10.0.0.7", Some(VM_MAC))];
    assert_eq!(merge_pairs(&[pair("10.0.0.7", None)], &ours, VM_MAC), None);
    assert_eq!(
        remove_pairs(&[pair("10.0.0.7", None)], &ours, VM_MAC),
        Some(vec![])
    );
}

#[test]
fn only_our_pairs_are_removed() {
    let user = pair("192.168.0.10", Some("fa:16:3e:aa:aa:aa"));
    let same_ip_other_mac = pair("10.0.0.5", Some("fa:16:3e:99:99:99"));
    let ours = [pair("10.0.0.5", Some("fa:16:3e:00:00:05"))];
    let existing = [
        user.clone(),
        pair("10.0.0.5/32", Some("fa:16:3e:00:00:05")),
        same_ip_other_mac.clone(),
    ];
    assert_eq!(
        remove_pairs(&existing, &ours, VM_MAC),
        Some(vec![user.clone(), same_ip_other_mac.clone()])
    );
    // Already gone: nothing to write.
    assert_eq!(
        remove_pairs(&[user.clone(), same_ip_other_mac], &ours, VM_MAC),
        None
    );
    assert_eq!(remove_pairs(&[], &ours, VM_MAC), None);
}

#[test]
fn segmentation_ids_are_the_lowest_free() {
    let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
    assert_eq!(lowest_free_vlan(&set(&[])), Some(1));
    assert_eq!(lowest_free_vlan(&set(&[1, 2, 3])), Some(4));
    assert_eq!(lowest_free_vlan(&set(&[1, 3, 4])), Some(2));
    assert_eq!(lowest_free_vlan(&set(&[2, 4095, 0])), Some(1));
    let all: BTreeSet<u32> = (1..=4094).collect();
    assert_eq!(lowest_free_vlan(&all), None);
    let mut almost = all.clone();
    almost.remove(&4094);
    assert_eq!(lowest_free_vlan(&almost), Some(4094));
}

fn link(name: &str, mac: &str, kind: Option<&str>) -> HostLink {
    HostLink {
        name: name.into(),
        mac: Some(mac.into()),
        kind: kind.map(str::to_string),
        mtu: Some(1500),
    }
}

fn port(id: &str, mac: &str, owner: &str) -> Port {
    Port {
        id: id.into(),
        network_id: "net".into(),
        mac_address: mac.into(),
        device_owner: owner.into(),
        ..Default::default()
    }
}

#[test]
fn vm_port_by_link_iface_mac() {
    let links = [
        link("lo", "00:00:00:00:00:00", None),
        link("eth0", "fa:16:3e:00:00:01", None),
        link("eth1", "fa:16:3e:00:00:02", None),
    ];
    let ports = [
        port("p1", "FA:16:3E:00:00:01", "compute:nova"),
        port("p2", "fa:16:3e:00:00:02", "compute:nova"),
    ];
    let (l, p) = pick_vm_port(&links, Some("eth1"), &ports, "here").unwrap();
    assert_eq!((l.as_str(), p.id.as_str()), ("eth1", "p2"));
    let (l, p) = pick_vm_port(&links, Some("eth0"), &ports, "here").unwrap();
    assert_eq!((l.as_str(), p.id.as_str()), ("eth0", "p1"));

    let e = pick_vm_port(&links, Some("eth9"), &ports, "here").unwrap_err();
    assert!(e.contains("\"eth9\" does not exist in here"), "{e}");
    let e = pick_vm_port(&links, Some("eth0"), &ports[1..], "here").unwrap_err();
    assert!(
        e.contains("no Neutron port has the MAC fa:16:3e:00:00:01"),
        "{e}"
    );
    let twice = [
        ports[0].clone(),
        port("p3", "fa:16:3e:00:00:01", "compute:nova"),
    ];
    let e = pick_vm_port(&links, Some("eth0"), &twice, "here").unwrap_err();
    assert!(e.contains("p1") && e.contains("p3"), "{e}");
    // A container port with that MAC (a leftover) never counts.
    let with_container = [
        ports[0].clone(),
        port("c1", "fa:16:3e:00:00:01", names::DEVICE_OWNER),
    ];
    let (_, p) = pick_vm_port(&links, Some("eth0"), &with_container, "here").unwrap();
    assert_eq!(p.id, "p1");
}

#[test]
fn vm_port_found_without_link_iface() {
    let links = [
        link("lo", "00:00:00:00:00:00", None),
        link("docker0", "02:42:ac:11:00:01", Some("bridge")),
        link("eth0", "fa:16:3e:00:00:01", None),
        link("t_c3f1e2a4b-5c", "fa:16:3e:00:00:09", Some("macvlan")),
        link("eth1", "52:54:00:12:34:56", None),
    ];
    let ports = [
        port("p1", "fa:16:3e:00:00:01", "compute:nova"),
        port("c9", "fa:16:3e:00:00:09", names::DEVICE_OWNER),
    ];
    let (l, p) = pick_vm_port(&links, None, &ports, "here").unwrap();
    assert_eq!((l.as_str(), p.id.as_str()), ("eth0", "p1"));

    let e = pick_vm_port(&links, None, &ports[1..], "here").unwrap_err();
    assert!(e.contains("set [binding] link_iface"), "{e}");
    assert!(e.contains("eth0 fa:16:3e:00:00:01"), "{e}");
    assert!(!e.contains("docker0"), "{e}");

    let two = [
        ports[0].clone(),
        port("p2", "52:54:00:12:34:56", "compute:nova"),
    ];
    let e = pick_vm_port(&links, None, &two, "here").unwrap_err();
    assert!(
        e.contains("eth0 = port p1") && e.contains("eth1 = port p2"),
        "{e}"
    );
}

use super::*;

fn errors(text: &str) -> Vec<(usize, String)> {
    let (config, diags) = parse("config.rc", text);
    assert!(config.is_none(), "expected errors for {text:?}");
    diags.into_iter().map(|d| (d.line, d.message)).collect()
}

#[test]
fn reference_example_without_wireguard() {
    let text =
        "service network eth0\n  auto on\n  ip address 192.168.0.200/24\n  ip route default 192.168.0.1\n\
service network eth0.100          # VLAN\n  ip address 172.16.100.4/26\nservice vrrp\n  # no autostart\n";
    let (config, diags) = parse("config.rc", text);
    assert!(diags.is_empty(), "{diags:#?}");
    let config = config.unwrap();
    let ifaces: Vec<&Interface> = config.interfaces().collect();
    assert_eq!(ifaces.len(), 2);
    assert_eq!(ifaces[0].addresses, vec![Address::Static(Cidr::parse("192.168.0.200/24").unwrap())]);
    assert_eq!(
        ifaces[0].routes,
        vec![Route {
            destination: Cidr::parse("0.0.0.0/0").unwrap(),
            gateway: "192.168.0.1".parse().unwrap()
        }]
    );
    assert_eq!(ifaces[1].kind, InterfaceKind::Vlan { parent: "eth0".into(), id: 100 });
    assert!(config.autostart("vrrp"));
    assert!(config.autostart("haproxy"));
}

#[test]
fn no_autostart_on_one_line_or_indented() {
    let (config, _) =
        parse("config.rc", "service haproxy\nno autostart\nservice vrrp\n    no   autostart  # off\n");
    let config = config.unwrap();
    assert!(!config.autostart("haproxy"));
    assert!(!config.autostart("vrrp"));
    assert!(config.autostart("network"));
}

#[test]
fn network_details() {
    let text = "service network dummy0\n type dummy\n mtu 1400\n ip address 10.0.0.1/8\n ip address 2001:db8::1/64\n\
 ip address dhcp\n ip route 10.20.0.0/16 10.0.0.254\n ip route default 2001:db8::fe\n auto off\n";
    let (config, diags) = parse("config.rc", text);
    assert!(diags.is_empty(), "{diags:#?}");
    let config = config.unwrap();
    let iface = config.interfaces().next().unwrap();
    assert_eq!(iface.kind, InterfaceKind::Dummy);
    assert_eq!(iface.mtu, Some(1400));
    assert!(!iface.auto);
    assert_eq!(iface.addresses.len(), 3);
    assert_eq!(iface.routes[1].destination, Cidr::parse("::/0").unwrap());
}

#[test]
fn errors_name_keyword_and_line() {
    assert_eq!(
        errors("service network eth0\n  ip address 10.0.0.1/24\n  frobnicate 1\n"),
        vec![(3, "unknown keyword 'frobnicate' in 'service network'".to_string())]
    );
    let e = errors("service network wg0\n  type wg\n  wg listen_port 51820\n");
    assert_eq!(e[0].0, 2);
    assert!(e[0].1.contains("'wg'"), "{e:?}");
    assert!(e[1].1.contains("unknown keyword 'wg'"), "{e:?}");
    let e = errors("service wg\n  interface wg0\n");
    assert_eq!(e[0].0, 1);
    assert!(e[0].1.contains("unsupported service 'wg'"), "{e:?}");
    let e = errors("service vrrp\n  group eth0\n  track_svc haproxy\n");
    assert_eq!(e.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![2, 3]);
    assert!(e[0].1.contains("'group'") && e[1].1.contains("'track_svc'"), "{e:?}");
    assert!(errors("  ip address 10.0.0.1/24\n")[0].1.contains("outside of a 'service' block"));
}

#[test]
fn bad_values() {
    for (text, needle) in [
        ("service network eth0\n ip address 10.0.0.1\n", "prefix length"),
        ("service network eth0\n ip address 10.0.0.1/33\n", "prefix length"),
        ("service network eth0\n ip address bogus/24\n", "not an IP address"),
        ("service network eth0\n ip route 10.1.0.0/16 2001:db8::1\n", "different address families"),
        ("service network eth0\n ip route 10.1.2.3/16 10.0.0.1\n", "host bits"),
        ("service network eth0\n mtu 10\n", "68-65535"),
        ("service network eth0.5000\n", "VLAN id"),
        ("service network averyveryverylongname\n", "not a valid interface name"),
        ("service network\n", "needs an interface name"),
        ("service haproxy extra\n", "takes no instance name"),
        ("service network eth0\nservice network eth0\n", "defined twice"),
        ("service network eth0\n auto maybe\n", "'on' or 'off'"),
        ("service network eth0.3\n type dummy\n", "does not apply"),
        ("service\n", "needs a service name"),
    ] {
        let e = errors(text);
        assert!(e.iter().any(|(_, m)| m.contains(needle)), "{text:?}: {e:?}");
    }
}

#[test]
fn empty_file_is_valid() {
    let (config, diags) = parse("config.rc", "# nothing yet\n\n");
    assert!(diags.is_empty());
    assert!(config.unwrap().blocks.is_empty());
}

#[test]
fn cidr_and_route_serde_as_text() {
    let r =
        Route { destination: Cidr::parse("10.20.0.0/16").unwrap(), gateway: "10.0.0.254".parse().unwrap() };
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, r#"{"destination":"10.20.0.0/16","gateway":"10.0.0.254"}"#);
    assert_eq!(serde_json::from_str::<Route>(&json).unwrap(), r);
    let c: Cidr = serde_json::from_str("\"2001:db8::1/64\"").unwrap();
    assert_eq!(c, Cidr::parse("2001:db8::1/64").unwrap());
    assert!(serde_json::from_str::<Cidr>("\"10.0.0.1\"").is_err());
}

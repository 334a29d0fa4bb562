//! The client's address: the connection's peer, or, when the peer is a trusted proxy, the
//! address that proxy saw (the rightmost untrusted one in `X-Forwarded-For`).

use std::net::IpAddr;

/// A list of proxies (addresses or CIDR prefixes) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.168.1.7`, `fd00::/8`…; each error names the entry.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for entry in entries {
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry.as_str(), None),
            };
            let ip: IpAddr =
                addr.trim().parse().map_err(|_| format!("{entry:?} is not an IP address or CIDR prefix"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{entry:?}: the prefix length must be 0..={max}"))?,
                None => max,
            };
            out.push((ip, bits));
        }
        Ok(TrustedProxies(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|&(net, bits)| match (canonical(net), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
            _ => false,
        })
    }

    /// The client's address: `peer` unless it is trusted; then, walking `X-Forwarded-For` (all
    /// its header lines, in order) from the right, the first address that is not trusted. An
    /// entry that is not an address stops the walk there (nothing left of it can be believed).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for.iter().flat_map(|line| line.split(',')).map(str::trim).collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else { break };
            client = canonical(ip);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_and_single_addresses_match_as_written() {
        let t = TrustedProxies::parse(&[
            "10.0.0.0/8".into(),
            "192.168.1.7".into(),
            "fd00::/8".into(),
            "172.16.0.0/12".into(),
        ])
        .unwrap();
        for yes in ["10.1.2.3", "192.168.1.7", "fd12::1", "::ffff:10.9.9.9", "172.31.255.1"] {
            assert!(t.contains(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "192.168.1.8", "fe80::1", "172.32.0.1", "::1"] {
            assert!(!t.contains(ip(no)), "{no}");
        }
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err().contains("0..=32"));
        assert!(TrustedProxies::parse(&["proxy.local".into()]).unwrap_err().contains("proxy.local"));
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_vouches_for_beyond() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        // A direct client: its forwarded header is its own claim, ignored.
        assert_eq!(t.client(ip("203.0.113.9"), &["1.2.3.4"]), ip("203.0.113.9"));
        // Through the load balancer: the address it saw.
        assert_eq!(t.client(ip("10.0.0.2"), &["203.0.113.9"]), ip("203.0.113.9"));
        // A client that forges a header before the load balancer appends: the forgery is left of
        // the address the balancer saw, so it is not reached.
        assert_eq!(t.client(ip("10.0.0.2"), &["1.2.3.4, 203.0.113.9"]), ip("203.0.113.9"));
        // Two trusted hops, over two header lines.
        assert_eq!(t.client(ip("10.0.0.2"), &["203.0.113.9", "10.0.0.5"]), ip("203.0.113.9"));
        // No header, or garbage: the proxy itself is the best known.
        assert_eq!(t.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        assert_eq!(t.client(ip("10.0.0.2"), &["unknown"]), ip("10.0.0.2"));
        // Nobody trusted: the peer, whatever the header says.
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.2"), &["1.2.3.4"]), ip("10.0.0.2"));
    }
}

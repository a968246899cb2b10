//! The SSRF guard: webhooks go to public addresses only. Private, loopback, link-local (cloud
//! metadata), shared (CGNAT), multicast and other special-purpose addresses are refused unless a
//! configured network allow-lists them. The check runs on the addresses a name resolves to at
//! send time (inside the HTTP client's resolver, so the address checked is the address
//! connected to), and on IP-literal URLs before the request is made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a destination address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub range: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host == self.ip.to_string() {
            write!(
                f,
                "{} is a {} address (not allow-listed)",
                self.ip, self.range
            )
        } else {
            write!(
                f,
                "{} resolves to {}, a {} address (not allow-listed)",
                self.host, self.ip, self.range
            )
        }
    }
}

/// Special-purpose ranges (IANA registries) no webhook may reach by default, with their names.
static SPECIAL_V4: LazyLock<Vec<(Ipv4Net, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "this-network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ]
    .into_iter()
    .filter_map(|(net, name)| Some((net.parse().ok()?, name)))
    .collect()
});

static SPECIAL_V6: LazyLock<Vec<(Ipv6Net, &'static str)>> = LazyLock::new(|| {
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("100::/64", "discard"),
        ("2001:db8::/32", "documentation"),
        ("fc00::/7", "unique-local (private)"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ]
    .into_iter()
    .filter_map(|(net, name)| Some((net.parse().ok()?, name)))
    .collect()
});

/// Which addresses webhooks may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Public addresses, plus the special-purpose ones inside `allowed`.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// `Err` with the range's name when `ip` is special-purpose and not allow-listed.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match special_range(ip) {
            Some(range) => Err(range),
            None => Ok(()),
        }
    }

    /// Checks a URL's host when it is an IP literal (names are checked when they resolve).
    pub fn check_literal(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check(ip).map_err(|range| Refused {
            host: ip.to_string(),
            ip,
            range,
        })
    }
}

/// The special-purpose range `ip` is in, looking through IPv4-mapped, IPv4-compatible and NAT64
/// IPv6 forms to the IPv4 address they carry.
fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => special_v4(v4),
            None => SPECIAL_V6
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|(_, name)| *name),
        },
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_broadcast() {
        return Some("broadcast");
    }
    SPECIAL_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

/// The IPv4 address inside `::ffff:a.b.c.d`, `::a.b.c.d` and `64:ff9b::a.b.c.d`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let segments = ip.segments();
    let tail = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible =
        segments[..6] == [0; 6] && !matches!(ip, Ipv6Addr::UNSPECIFIED | Ipv6Addr::LOCALHOST);
    (nat64 || compatible).then_some(tail)
}

/// The HTTP client's resolver: the system's, then the policy on every address it returns. A
/// name with any refused address is refused whole (no picking the public one of a mixed set:
/// the client might still connect to the other).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                policy.check(addr.ip()).map_err(|range| Refused {
                    host: host.clone(),
                    ip: addr.ip(),
                    range,
                })?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The refusal somewhere in `error`'s chain of causes, if a refusal is what failed it.
pub fn refusal<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn special_purpose_addresses_are_refused_by_default() {
        let policy = AddressPolicy::default();
        for (address, range) in [
            ("10.0.0.1", "private"),
            ("172.20.1.1", "private"),
            ("192.168.1.10", "private"),
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local (metadata)"),
            ("100.100.100.200", "shared (CGNAT)"),
            ("0.0.0.0", "this-network"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "unique-local (private)"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local (metadata)"),
            ("::7f00:1", "loopback"),
        ] {
            assert_eq!(policy.check(ip(address)), Err(range), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = AddressPolicy::default();
        for address in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::6810:85e5",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(policy.check(ip(address)), Ok(()), "{address}");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let policy = AddressPolicy::new(vec![
            "127.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ]);
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::1")), Ok(()));
        assert_eq!(policy.check(ip("10.0.0.1")), Err("private"));
        assert_eq!(
            policy.check(ip("169.254.169.254")),
            Err("link-local (metadata)")
        );
    }

    #[test]
    fn literal_urls_are_checked_names_are_left_to_the_resolver() {
        let policy = AddressPolicy::default();
        let url = |s: &str| url::Url::parse(s).expect("url");
        let refused = policy
            .check_literal(&url("http://169.254.169.254/latest/meta-data"))
            .expect_err("metadata");
        assert_eq!(refused.ip, ip("169.254.169.254"));
        assert!(policy.check_literal(&url("http://[::1]:8080/")).is_err());
        assert!(policy.check_literal(&url("https://hooks.example/")).is_ok());
        assert!(policy.check_literal(&url("https://8.8.8.8/")).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let resolver = GuardedResolver::new(Arc::new(AddressPolicy::default()));
        let error = resolver
            .resolve("localhost".parse().expect("name"))
            .await
            .err()
            .expect("localhost is loopback");
        let refused = refusal(error.as_ref()).expect("a refusal");
        assert_eq!(refused.range, "loopback");

        let allowing = GuardedResolver::new(Arc::new(AddressPolicy::new(vec![
            "127.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ])));
        let addrs: Vec<_> = allowing
            .resolve("localhost".parse().expect("name"))
            .await
            .expect("allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}

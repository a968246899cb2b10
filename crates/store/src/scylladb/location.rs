//! `scylla://host1:9042,host2:9042/<keyspace>?dc=<local dc>`: where the cluster is. Credentials
//! and TLS come from `[store.scylla]` (or the environment), never from the URL, so a URL can be
//! logged whole.

use crate::{Error, Result};

/// The default CQL port.
const PORT: u16 = 9042;

/// The contact points, keyspace and local data centre a `scylla://` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaLocation {
    /// `host:port` contact points (the driver discovers the rest of the cluster).
    pub nodes: Vec<String>,
    pub keyspace: String,
    /// The data centre whose replicas are local: requests go there, at LOCAL_QUORUM.
    pub local_dc: Option<String>,
}

impl ScyllaLocation {
    /// Parses what follows `scylla://`.
    pub fn parse(rest: &str, url: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("store.url {url:?}: {why}"));
        let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            // Not echoed: the URL holds a password.
            return Err(Error::Config(
                "store.url: credentials do not belong in the URL; set store.scylla.username and password".into(),
            ));
        }
        let nodes = authority
            .split(',')
            .map(|node| node.trim())
            .map(|node| {
                if node.is_empty() {
                    return Err(bad("an empty host in the node list"));
                }
                // `[::1]:9042` and `host:9042` carry a port; `host` and `[::1]` get 9042.
                let has_port = match node.rfind(']') {
                    Some(close) => node[close..].contains(':'),
                    None => node.contains(':'),
                };
                Ok(if has_port {
                    node.to_owned()
                } else {
                    format!("{node}:{PORT}")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (keyspace, query) = tail.split_once('?').unwrap_or((tail, ""));
        let valid_keyspace = (1..=48).contains(&keyspace.len())
            && keyspace.starts_with(|c: char| c.is_ascii_lowercase())
            && keyspace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_keyspace {
            return Err(bad(
                "the path must name the keyspace: 1-48 of a-z, 0-9 and _, starting with a letter (scylla://host:9042/receipts)",
            ));
        }
        let mut local_dc = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("dc", dc)) if !dc.is_empty() => local_dc = Some(dc.to_owned()),
                _ => return Err(bad(&format!("unknown option {pair:?} (known: dc=<name>)"))),
            }
        }
        Ok(Self {
            nodes,
            keyspace: keyspace.to_owned(),
            local_dc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rest: &str) -> Result<ScyllaLocation> {
        ScyllaLocation::parse(rest, &format!("scylla://{rest}"))
    }

    #[test]
    fn nodes_keyspace_and_dc() {
        assert_eq!(
            parse("host1:9042,host2:19042/receipts?dc=dc1").expect("valid"),
            ScyllaLocation {
                nodes: vec!["host1:9042".into(), "host2:19042".into()],
                keyspace: "receipts".into(),
                local_dc: Some("dc1".into()),
            }
        );
        let plain = parse("scylla/receipts_test").expect("valid");
        assert_eq!(plain.nodes, ["scylla:9042"]);
        assert_eq!(plain.local_dc, None);
        assert_eq!(parse("[::1]/ks").expect("valid").nodes, ["[::1]:9042"]);
        assert_eq!(parse("[::1]:9043/ks").expect("valid").nodes, ["[::1]:9043"]);
    }

    #[test]
    fn bad_urls_say_why() {
        for (rest, says) in [
            ("host:9042", "keyspace"),
            ("host:9042/", "keyspace"),
            ("host:9042/Receipts", "keyspace"),
            ("host:9042/receipts-prod", "keyspace"),
            ("host1,,host2/ks", "empty host"),
            ("user:secret@host/ks", "credentials"),
            ("host/ks?consistency=one", "unknown option"),
            ("host/ks?dc=", "unknown option"),
        ] {
            let error = parse(rest).expect_err(rest).to_string();
            assert!(error.contains(says), "{rest}: {error}");
            assert!(!error.contains("secret"), "never echoed: {error}");
        }
    }
}

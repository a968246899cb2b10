//! The keyspace's schema, versioned: `migrations/NNNN.cql`, applied in order by `receipts store
//! migrate`, which records the version reached in `schema_version`. Services check the version
//! at start and refuse an older (or newer) schema with a message that says what to do.

use scylla::client::session::Session;

use super::{ScyllaLocation, backend};
use crate::config::ScyllaOptions;
use crate::{Error, Result};

/// Every migration, in order: migration `n` (1-based) takes the schema to version `n`. Append;
/// never edit a released one.
const MIGRATIONS: [&str; 1] = [include_str!("migrations/0001.cql")];

/// The schema version this build reads and writes.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// The statements of one migration file: split at `;`, without `--` comments.
pub(super) fn statements(cql: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .map(|line| match line.find("--") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The replication clause of the keyspace: NetworkTopologyStrategy with `replication` (data
/// centre -> replicas), or 3 replicas in the URL's data centre.
pub(super) fn replication(location: &ScyllaLocation, options: &ScyllaOptions) -> String {
    let mut per_dc: Vec<(String, u32)> = options
        .replication
        .iter()
        .map(|(dc, n)| (dc.clone(), *n))
        .collect();
    if per_dc.is_empty() {
        let dc = location.local_dc.as_deref().unwrap_or("datacenter1");
        per_dc.push((dc.to_owned(), 3));
    }
    let parts: Vec<String> = std::iter::once("'class': 'NetworkTopologyStrategy'".to_owned())
        .chain(
            per_dc
                .iter()
                .map(|(dc, n)| format!("'{}': {n}", dc.replace('\'', "''"))),
        )
        .collect();
    format!("{{{}}}", parts.join(", "))
}

async fn run(session: &Session, cql: &str) -> Result<()> {
    session
        .query_unpaged(cql, ())
        .await
        .map(drop)
        .map_err(backend)
}

/// The recorded schema version (0: none yet).
async fn version(session: &Session, keyspace: &str) -> Result<u32> {
    let result = session
        .query_unpaged(
            format!("SELECT version FROM {keyspace}.schema_version WHERE name = 'store'"),
            (),
        )
        .await
        .map_err(backend)?;
    let rows = result.into_rows_result().map_err(backend)?;
    let version = rows.maybe_first_row::<(i32,)>().map_err(backend)?;
    Ok(version.map_or(0, |(v,)| u32::try_from(v).unwrap_or(0)))
}

pub(super) async fn migrate(
    session: &Session,
    location: &ScyllaLocation,
    options: &ScyllaOptions,
) -> Result<u32> {
    let keyspace = &location.keyspace;
    let tablets = if options.disable_tablets {
        " AND tablets = {'enabled': false}"
    } else {
        ""
    };
    run(
        session,
        &format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {} AND durable_writes = true{tablets}",
            replication(location, options)
        ),
    )
    .await?;
    run(
        session,
        &format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.schema_version (name text PRIMARY KEY, version int)"
        ),
    )
    .await?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| backend(scylla::errors::ExecutionError::from(e)))?;
    let current = version(session, keyspace).await?;
    if current > LATEST_VERSION {
        return Err(newer(current));
    }
    for (n, cql) in (1..).zip(MIGRATIONS).skip(current as usize) {
        tracing::info!(keyspace = %keyspace, version = n, "applying store migration");
        session
            .use_keyspace(keyspace, false)
            .await
            .map_err(|e| backend(scylla::errors::ExecutionError::from(e)))?;
        for statement in statements(cql) {
            run(session, &statement).await?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(|e| backend(scylla::errors::ExecutionError::from(e)))?;
        run(
            session,
            &format!("INSERT INTO {keyspace}.schema_version (name, version) VALUES ('store', {n})"),
        )
        .await?;
    }
    Ok(LATEST_VERSION)
}

/// Refuses a keyspace whose schema is not this build's.
pub(super) async fn check(session: &Session, keyspace: &str) -> Result<()> {
    let current = match version(session, keyspace).await {
        Ok(v) => v,
        // No keyspace or no version table: never migrated.
        Err(Error::Backend {
            transient: false, ..
        }) => 0,
        Err(e) => return Err(e),
    };
    if current > LATEST_VERSION {
        return Err(newer(current));
    }
    if current < LATEST_VERSION {
        return Err(Error::Open {
            location: format!("keyspace {keyspace}"),
            detail: format!(
                "the schema is at version {current}, this build needs {LATEST_VERSION}: run `receipts store migrate` first"
            ),
        });
    }
    Ok(())
}

fn newer(current: u32) -> Error {
    Error::Open {
        location: "the scylla keyspace".into(),
        detail: format!(
            "schema version {current} is newer than this build's ({LATEST_VERSION}); upgrade the binary"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn migration_files_split_into_statements_without_comments() {
        let all = statements(MIGRATIONS[0]);
        assert!(all.len() >= 15, "{}", all.len());
        assert!(
            all.iter()
                .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS "))
        );
        assert!(all.iter().all(|s| !s.contains("--") && !s.contains(';')));
        assert!(all.iter().any(
            |s| s.contains("receipts_by_tenant") && s.contains("CLUSTERING ORDER BY (id DESC)")
        ));
        assert_eq!(
            statements("-- a; comment\nCREATE TABLE a (x int PRIMARY KEY); -- after\n\n"),
            ["CREATE TABLE a (x int PRIMARY KEY)"]
        );
    }

    #[test]
    fn replication_is_per_data_centre() {
        let location = ScyllaLocation::parse("h/ks?dc=eu", "scylla://h/ks?dc=eu").expect("url");
        assert_eq!(
            replication(&location, &ScyllaOptions::default()),
            "{'class': 'NetworkTopologyStrategy', 'eu': 3}"
        );
        let options = ScyllaOptions {
            replication: BTreeMap::from([("eu".into(), 3), ("us".into(), 2)]),
            ..Default::default()
        };
        assert_eq!(
            replication(&location, &options),
            "{'class': 'NetworkTopologyStrategy', 'eu': 3, 'us': 2}"
        );
    }
}

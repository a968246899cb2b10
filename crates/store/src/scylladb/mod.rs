//! The ScyllaDB backend (`scylla://…`): the production store, one keyspace per deployment. The
//! data model is query first, one table per query (docs/storage.md); every statement is
//! prepared once at open, with bound partition keys (token- and shard-aware routing), marked
//! idempotent where replaying it is safe, and run under one of two execution profiles: short
//! requests by key, and long paged scans. Reads and writes are LOCAL_QUORUM, lightweight
//! transactions LOCAL_SERIAL.
//!
//! Records are the domain types as JSON (as in the SQLite backend), so that mapping rows is one
//! line per table and cannot drift from the domain.

mod buckets;
mod location;
mod receipts;
mod rows;
mod schema;
mod statements;
mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

pub use location::ScyllaLocation;

use crate::config::ScyllaOptions;
use crate::{Error, Health, Result};
use statements::Statements;

pub(crate) const BACKEND: &str = "scylla";

/// A connected session with every statement prepared. Cheap to clone.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    statements: Statements,
}

impl ScyllaStore {
    /// Connects and checks that the keyspace's schema is the one this build writes (run
    /// [`ScyllaStore::migrate`] first).
    pub async fn open(location: &ScyllaLocation, options: &ScyllaOptions) -> Result<Self> {
        let session = connect(location, options).await?;
        schema::check(&session, &location.keyspace).await?;
        let statements =
            Statements::prepare(&session, &location.keyspace, location, options).await?;
        tracing::info!(nodes = ?location.nodes, keyspace = %location.keyspace, dc = ?location.local_dc, "opened scylla store");
        Ok(Self {
            inner: Arc::new(Inner {
                session,
                statements,
            }),
        })
    }

    /// Creates the keyspace (NetworkTopologyStrategy, replicas per data centre from
    /// `options.replication`) if it does not exist and applies every migration it lacks;
    /// returns the schema version. Idempotent.
    pub async fn migrate(location: &ScyllaLocation, options: &ScyllaOptions) -> Result<u32> {
        let session = connect(location, options).await?;
        schema::migrate(&session, location, options).await
    }

    fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The one row `statement` selects, if any.
    async fn one<T>(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Option<T>>
    where
        T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        self.session()
            .execute_unpaged(statement, values)
            .await
            .map_err(backend)?
            .into_rows_result()
            .map_err(backend)?
            .maybe_first_row::<T>()
            .map_err(backend)
    }

    /// Every row of a paged scan.
    async fn all<T>(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<T>>
    where
        T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        self.session()
            .execute_iter(statement.clone(), values)
            .await
            .map_err(backend)?
            .rows_stream::<T>()
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)
    }

    fn st(&self) -> &Statements {
        &self.inner.statements
    }
}

/// A session with the local data centre preferred and the OLTP profile as default.
async fn connect(location: &ScyllaLocation, options: &ScyllaOptions) -> Result<Session> {
    let mut builder = SessionBuilder::new()
        .known_nodes(&location.nodes)
        .default_execution_profile_handle(oltp_profile(location, options).into_handle());
    if let Some(user) = &options.username {
        let password = options
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder.user(user, password);
    }
    if options.tls {
        builder = builder.tls_context(Some(tls::client_config(options)?));
    }
    builder.build().await.map_err(|e| Error::Open {
        location: format!(
            "scylla://{}/{}",
            location.nodes.join(","),
            location.keyspace
        ),
        detail: e.to_string(),
    })
}

fn policy(
    location: &ScyllaLocation,
) -> Arc<dyn scylla::policies::load_balancing::LoadBalancingPolicy> {
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &location.local_dc {
        // LOCAL_* consistency means nothing across data centres: stay in ours.
        policy = policy
            .prefer_datacenter(dc.clone())
            .permit_dc_failover(false);
    }
    policy.build()
}

fn oltp_profile(location: &ScyllaLocation, options: &ScyllaOptions) -> ExecutionProfile {
    ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(options.request_timeout))
        .load_balancing_policy(policy(location))
        .build()
}

fn scan_profile(location: &ScyllaLocation, options: &ScyllaOptions) -> ExecutionProfile {
    ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(options.scan_timeout))
        .load_balancing_policy(policy(location))
        .build()
}

mod tls {
    //! TLS to the nodes, verified against the system's roots and an optional CA file.

    use std::sync::Arc;

    use rustls::RootCertStore;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use crate::config::ScyllaOptions;
    use crate::{Error, Result};

    pub(super) fn client_config(options: &ScyllaOptions) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(file) = &options.ca_file {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::Config(format!("store.scylla.ca_file {}: {e}", file.display()))
                })?;
            roots.add_parsable_certificates(certs);
        }
        // An explicit provider: the dependency tree enables more than one.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// A driver error as a store error: transient unless the request itself is wrong.
pub(crate) fn backend(error: impl Into<DriverError>) -> Error {
    let error = error.into();
    Error::Backend {
        backend: BACKEND,
        transient: error.transient,
        source: error.source,
    }
}

/// Any error of the driver, classified.
pub(crate) struct DriverError {
    transient: bool,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl From<scylla::errors::ExecutionError> for DriverError {
    fn from(e: scylla::errors::ExecutionError) -> Self {
        use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
        let transient = match &e {
            ExecutionError::BadQuery(_) | ExecutionError::PrepareError(_) => false,
            ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => !matches!(
                db,
                DbError::SyntaxError
                    | DbError::Invalid
                    | DbError::Unauthorized
                    | DbError::AlreadyExists { .. }
                    | DbError::ConfigError
            ),
            _ => true,
        };
        Self {
            transient,
            source: Arc::new(e),
        }
    }
}

macro_rules! permanent_driver_errors {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for DriverError {
            fn from(e: $t) -> Self {
                Self { transient: false, source: Arc::new(e) }
            }
        })*
    };
}

// Rows that do not have the shape the statement promises: a schema out of step, never a
// passing condition.
permanent_driver_errors!(
    scylla::errors::IntoRowsResultError,
    scylla::errors::RowsError,
    scylla::errors::FirstRowError,
    scylla::errors::MaybeFirstRowError,
    scylla::errors::TypeCheckError,
    scylla::errors::DeserializationError,
    scylla::errors::PrepareError,
);

impl From<scylla::errors::PagerExecutionError> for DriverError {
    fn from(e: scylla::errors::PagerExecutionError) -> Self {
        Self {
            transient: true,
            source: Arc::new(e),
        }
    }
}

impl From<scylla::errors::NextRowError> for DriverError {
    fn from(e: scylla::errors::NextRowError) -> Self {
        Self {
            transient: true,
            source: Arc::new(e),
        }
    }
}

#[async_trait]
impl Health for ScyllaStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.session()
            .execute_unpaged(&self.st().ping, ())
            .await
            .map(drop)
            .map_err(backend)
    }
}

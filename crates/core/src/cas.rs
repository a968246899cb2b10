//! Read, change, compare-and-set: the one way records change.

use receipts_domain::{CallbackSecrets, Delivery, Endpoint};
use receipts_store::Cas;

use crate::{Error, Result};

/// How often a change is tried again after losing to another writer before giving up.
pub(crate) const MAX_ATTEMPTS: u32 = 16;

/// A record with a version.
pub(crate) trait Versioned {
    fn version(&self) -> u64;
    fn set_version(&mut self, version: u64);
}

macro_rules! versioned {
    ($($record:ty),*) => {
        $(impl Versioned for $record {
            fn version(&self) -> u64 {
                self.version
            }
            fn set_version(&mut self, version: u64) {
                self.version = version;
            }
        })*
    };
}
versioned!(Endpoint, Delivery, CallbackSecrets);

/// What a change of a loaded record comes to.
pub(crate) enum Change<R> {
    /// Store the changed record; answer `R`.
    Write(R),
    /// Nothing to store; answer `R`.
    Keep(R),
}

/// Loads the record (`None`: it does not exist, and nothing is done), lets `change` change it,
/// and stores it one version higher if the stored version is still the one loaded; otherwise
/// starts again, up to [`MAX_ATTEMPTS`] times. Returns the record as stored and `change`'s
/// answer. (`load` and `save` are plain closures returning futures, so that the future of a use
/// case stays `Send`.)
pub(crate) async fn modify<T, R, L, LoadFut, S, SaveFut>(
    what: &'static str,
    id: &str,
    load: L,
    mut change: impl FnMut(&mut T) -> Result<Change<R>>,
    save: S,
) -> Result<Option<(T, R)>>
where
    T: Versioned + Clone,
    L: Fn() -> LoadFut,
    LoadFut: Future<Output = Result<Option<T>>>,
    S: Fn(T, u64) -> SaveFut,
    SaveFut: Future<Output = Result<Cas>>,
{
    for attempt in 1..=MAX_ATTEMPTS {
        let Some(mut record) = load().await? else {
            return Ok(None);
        };
        let loaded = record.version();
        let answer = match change(&mut record)? {
            Change::Keep(answer) => return Ok(Some((record, answer))),
            Change::Write(answer) => answer,
        };
        record.set_version(loaded + 1);
        match save(record.clone(), loaded).await? {
            Cas::Written => return Ok(Some((record, answer))),
            Cas::Conflict => {
                tracing::debug!(what, id, attempt, "concurrent change; trying again");
            }
        }
    }
    Err(Error::Contention {
        what,
        id: id.to_owned(),
        attempts: MAX_ATTEMPTS,
    })
}

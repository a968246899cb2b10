//! The type set a service validates with, reloaded when its directory changes: a directory
//! that fails to load is refused type by type, and the previous version of a refused type keeps
//! serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{FileError, TypeSet};

/// Where the receipt types come from (section `[receipt_types]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptTypesConfig {
    /// The types directory (`<name>/<version>/type.toml`, `vat-rates.toml`). Unset: only the
    /// built-in retail type.
    pub dir: Option<PathBuf>,
    /// How often the directory is looked at for changes (`0s`: never reloaded).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for ReceiptTypesConfig {
    fn default() -> Self {
        Self {
            dir: None,
            reload_interval: Duration::from_secs(2),
        }
    }
}

/// The current type set, shared by every task of a service.
#[derive(Debug, Clone)]
pub struct Catalog {
    current: Arc<RwLock<Arc<TypeSet>>>,
    dir: Option<PathBuf>,
    /// The directory's state when last loaded.
    seen: Arc<Mutex<Snapshot>>,
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reload {
    /// Whether the directory had changed since the last load.
    pub changed: bool,
    /// Problems of the refused files (empty: everything loaded).
    pub errors: Vec<FileError>,
}

impl Catalog {
    /// A catalog of the built-in types only.
    pub fn builtin() -> Catalog {
        Catalog {
            current: Arc::new(RwLock::new(TypeSet::builtin())),
            dir: None,
            seen: Arc::default(),
        }
    }

    /// Loads the configured types. The refused type directories are logged (and the others
    /// serve); a directory that cannot be read at all is an error.
    pub fn open(config: &ReceiptTypesConfig) -> Result<Catalog, FileError> {
        let Some(dir) = &config.dir else {
            return Ok(Catalog::builtin());
        };
        if !dir.is_dir() {
            return Err(FileError::whole(
                dir,
                "receipt_types.dir is not a directory",
            ));
        }
        let catalog = Catalog {
            current: Arc::new(RwLock::new(Arc::new(TypeSet::default()))),
            dir: Some(dir.clone()),
            seen: Arc::default(),
        };
        catalog.reload();
        Ok(catalog)
    }

    /// The type set to use now.
    pub fn current(&self) -> Arc<TypeSet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reloads the directory if any file in it changed (size, modification time, added or
    /// removed), logging what was refused.
    pub fn reload_if_changed(&self) -> Reload {
        let Some(dir) = &self.dir else {
            return Reload::default();
        };
        let state = snapshot(dir);
        if *self.seen.lock().unwrap_or_else(PoisonError::into_inner) == state {
            return Reload::default();
        }
        self.load(dir, state)
    }

    /// Reloads the directory now.
    pub fn reload(&self) -> Reload {
        match &self.dir {
            Some(dir) => self.load(dir, snapshot(dir)),
            None => Reload::default(),
        }
    }

    /// Loads `dir`, whose files are in the state `state`.
    fn load(&self, dir: &Path, state: Snapshot) -> Reload {
        let previous = self.current();
        let (set, errors) = TypeSet::load(dir, Some(&previous));
        for error in &errors {
            tracing::error!(
                file = %error.file.display(),
                line = error.line,
                error = %error.message,
                "receipt type refused; the previously loaded version (if any) keeps serving"
            );
        }
        let ids: Vec<String> = set.iter().map(|t| t.id()).collect();
        tracing::info!(dir = %dir.display(), types = ?ids, refused = errors.len(), "receipt types loaded");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = state;
        Reload {
            changed: true,
            errors,
        }
    }
}

/// Every file of a directory with its size and modification time, sorted.
type Snapshot = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The [`Snapshot`] of `dir`.
fn snapshot(dir: &Path) -> Snapshot {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            // `metadata` follows symbolic links (Kubernetes mounts ConfigMaps through them).
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(path);
            } else {
                files.push((path, metadata.len(), metadata.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

//! The registry state, its rules (global ids, per-subject versions, compatibility) and its
//! persistence (one JSON file, rewritten atomically on every change).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::error::{ApiError, Error, Result};
use crate::schema::{ParsedSchema, check_backward};

/// Version of the persistence file layout.
const FORMAT: u32 = 1;

/// A reference from one schema to a named schema registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Reference {
    pub name: String,
    pub subject: String,
    pub version: u32,
}

/// The body of a register or lookup request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaInput {
    pub schema: String,
    #[serde(default)]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
}

impl SchemaInput {
    fn references(&self) -> &[Reference] {
        self.references.as_deref().unwrap_or_default()
    }
}

/// A schema as answered by `GET /schemas/ids/{id}` (`schemaType` omitted: always AVRO).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SchemaView {
    pub schema: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// One version of a subject, as answered by the subject endpoints.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VersionView {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// `{"subject","version"}` pairs of `GET /schemas/ids/{id}/versions`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SubjectVersionRef {
    pub subject: String,
    pub version: u32,
}

/// Which version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSelector {
    Latest,
    Number(u32),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSchema {
    id: u32,
    schema: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SubjectVersion {
    version: u32,
    id: u32,
}

/// The persistence file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    format: u32,
    /// Ordered by id.
    schemas: Vec<StoredSchema>,
    /// Subject -> its versions, ascending.
    subjects: BTreeMap<String, Vec<SubjectVersion>>,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            format: FORMAT,
            schemas: Vec::new(),
            subjects: BTreeMap::new(),
        }
    }
}

/// What makes two registrations "the same schema" (same id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Identity {
    normalized: String,
    references: Vec<Reference>,
}

#[derive(Debug, Default)]
struct State {
    data: Persisted,
    /// id -> index in `data.schemas`.
    by_id: HashMap<u32, usize>,
    by_identity: HashMap<Identity, u32>,
}

impl State {
    /// Checks the loaded file's structure and builds the indexes.
    fn build(data: Persisted) -> Result<Self, String> {
        if data.format != FORMAT {
            return Err(format!(
                "unsupported format {} (expected {FORMAT})",
                data.format
            ));
        }
        let mut by_id = HashMap::with_capacity(data.schemas.len());
        for (index, schema) in data.schemas.iter().enumerate() {
            if schema.id == 0 {
                return Err("schema id 0 is not allowed".to_owned());
            }
            if by_id.insert(schema.id, index).is_some() {
                return Err(format!("schema id {} appears twice", schema.id));
            }
        }
        for (subject, versions) in &data.subjects {
            if versions.is_empty() {
                return Err(format!("subject '{subject}' has no versions"));
            }
            let mut previous = 0;
            for entry in versions {
                if entry.version <= previous {
                    return Err(format!(
                        "subject '{subject}': versions are not strictly ascending"
                    ));
                }
                previous = entry.version;
                if !by_id.contains_key(&entry.id) {
                    return Err(format!(
                        "subject '{subject}' version {} points to unknown schema id {}",
                        entry.version, entry.id
                    ));
                }
            }
        }
        let mut state = Self {
            data,
            by_id,
            by_identity: HashMap::new(),
        };
        let identities: Vec<(u32, Result<Identity, String>)> = state
            .data
            .schemas
            .iter()
            .map(|s| (s.id, state.stored_identity(s)))
            .collect();
        for (id, identity) in identities {
            match identity {
                // Keep the lowest id if two stored schemas now normalize alike.
                Ok(identity) => {
                    state.by_identity.entry(identity).or_insert(id);
                }
                Err(reason) => tracing::warn!(
                    id,
                    %reason,
                    "stored schema does not parse; it is served by id but never matched on registration"
                ),
            }
        }
        Ok(state)
    }

    fn schema(&self, id: u32) -> Option<&StoredSchema> {
        self.by_id
            .get(&id)
            .and_then(|&index| self.data.schemas.get(index))
    }

    fn version_entry(&self, subject: &str, version: u32) -> Option<SubjectVersion> {
        self.data
            .subjects
            .get(subject)?
            .iter()
            .find(|v| v.version == version)
            .copied()
    }

    fn view(&self, subject: &str, entry: SubjectVersion) -> Result<VersionView, ApiError> {
        let stored = self.schema(entry.id).ok_or(ApiError::SchemaNotFound)?;
        Ok(VersionView {
            subject: subject.to_owned(),
            version: entry.version,
            id: entry.id,
            schema: stored.schema.clone(),
            references: stored.references.clone(),
        })
    }

    /// The texts of every schema `references` point to, transitively, each once.
    fn referenced_texts(&self, references: &[Reference]) -> Result<Vec<String>, String> {
        let mut seen = HashSet::new();
        let mut texts = Vec::new();
        self.collect_referenced(references, &mut seen, &mut texts)?;
        Ok(texts)
    }

    fn collect_referenced(
        &self,
        references: &[Reference],
        seen: &mut HashSet<u32>,
        texts: &mut Vec<String>,
    ) -> Result<(), String> {
        for reference in references {
            let stored = self
                .version_entry(&reference.subject, reference.version)
                .and_then(|entry| self.schema(entry.id))
                .ok_or_else(|| {
                    format!(
                        "reference '{}' points to subject '{}' version {}, which does not exist",
                        reference.name, reference.subject, reference.version
                    )
                })?;
            if seen.insert(stored.id) {
                self.collect_referenced(&stored.references, seen, texts)?;
                texts.push(stored.schema.clone());
            }
        }
        Ok(())
    }

    fn parse(&self, text: &str, references: &[Reference]) -> Result<ParsedSchema, String> {
        let referenced = self.referenced_texts(references)?;
        ParsedSchema::parse(text, &referenced).map_err(|e| e.to_string())
    }

    fn stored_identity(&self, stored: &StoredSchema) -> Result<Identity, String> {
        let parsed = self.parse(&stored.schema, &stored.references)?;
        Ok(Identity {
            normalized: parsed.normalized(),
            references: stored.references.clone(),
        })
    }

    fn parse_input(&self, input: &SchemaInput) -> Result<(ParsedSchema, Identity), ApiError> {
        if let Some(schema_type) = &input.schema_type
            && !schema_type.eq_ignore_ascii_case("AVRO")
        {
            return Err(ApiError::UnsupportedSchemaType(schema_type.clone()));
        }
        let parsed = self
            .parse(&input.schema, input.references())
            .map_err(ApiError::InvalidSchema)?;
        let identity = Identity {
            normalized: parsed.normalized(),
            references: input.references().to_vec(),
        };
        Ok((parsed, identity))
    }
}

/// The registry: state behind a lock, and the file it is persisted to.
///
/// Writers hold the write lock from the duplicate check until the new state is on disk, so
/// concurrent registrations are serialized and the same schema always gets one id.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    state: RwLock<State>,
}

impl Store {
    pub(crate) async fn open(path: PathBuf) -> Result<Self> {
        if let Some(dir) = parent_dir(&path) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| Error::Io {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        let data = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                serde_json::from_slice::<Persisted>(&bytes).map_err(|e| Error::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Write the empty registry now, so an unwritable location fails at start and
                // not at the first registration.
                let data = Persisted::default();
                persist(&path, &data).await?;
                data
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        let state = State::build(data).map_err(|reason| Error::Corrupt {
            path: path.clone(),
            reason,
        })?;
        tracing::info!(
            path = %path.display(),
            schemas = state.data.schemas.len(),
            subjects = state.data.subjects.len(),
            "schema registry opened"
        );
        Ok(Self {
            path,
            state: RwLock::new(state),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn schema_by_id(&self, id: u32) -> Result<SchemaView, ApiError> {
        let state = self.state.read().await;
        let stored = state.schema(id).ok_or(ApiError::SchemaNotFound)?;
        Ok(SchemaView {
            schema: stored.schema.clone(),
            references: stored.references.clone(),
        })
    }

    /// Every (subject, version) that uses schema `id`.
    pub(crate) async fn versions_of_id(&self, id: u32) -> Result<Vec<SubjectVersionRef>, ApiError> {
        let state = self.state.read().await;
        state.schema(id).ok_or(ApiError::SchemaNotFound)?;
        Ok(state
            .data
            .subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions
                    .iter()
                    .filter(|v| v.id == id)
                    .map(|v| SubjectVersionRef {
                        subject: subject.clone(),
                        version: v.version,
                    })
            })
            .collect())
    }

    pub(crate) async fn subjects(&self) -> Vec<String> {
        self.state
            .read()
            .await
            .data
            .subjects
            .keys()
            .cloned()
            .collect()
    }

    pub(crate) async fn versions(&self, subject: &str) -> Result<Vec<u32>, ApiError> {
        let state = self.state.read().await;
        let versions = state
            .data
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::SubjectNotFound(subject.to_owned()))?;
        Ok(versions.iter().map(|v| v.version).collect())
    }

    pub(crate) async fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
    ) -> Result<VersionView, ApiError> {
        let state = self.state.read().await;
        let versions = state
            .data
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::SubjectNotFound(subject.to_owned()))?;
        let entry = match selector {
            VersionSelector::Latest => versions.last(),
            VersionSelector::Number(n) => versions.iter().find(|v| v.version == n),
        };
        let entry = match (entry, selector) {
            (Some(entry), _) => *entry,
            (None, VersionSelector::Number(n)) => return Err(ApiError::VersionNotFound(n)),
            (None, VersionSelector::Latest) => {
                return Err(ApiError::SubjectNotFound(subject.to_owned()));
            }
        };
        state.view(subject, entry)
    }

    /// Is `input` registered under `subject`? (`POST /subjects/{subject}`)
    pub(crate) async fn lookup(
        &self,
        subject: &str,
        input: &SchemaInput,
    ) -> Result<VersionView, ApiError> {
        let state = self.state.read().await;
        let versions = state
            .data
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::SubjectNotFound(subject.to_owned()))?;
        let (_, identity) = state.parse_input(input)?;
        let id = state
            .by_identity
            .get(&identity)
            .ok_or(ApiError::SchemaNotFound)?;
        let entry = versions
            .iter()
            .find(|v| v.id == *id)
            .ok_or(ApiError::SchemaNotFound)?;
        state.view(subject, *entry)
    }

    /// Registers `input` under `subject` (`POST /subjects/{subject}/versions`) and answers its
    /// global id.
    ///
    /// Runs in its own task so that a client hanging up mid-request cannot leave the file
    /// written but the in-memory state not updated.
    pub(crate) async fn register(
        self: Arc<Self>,
        subject: String,
        input: SchemaInput,
    ) -> Result<u32, ApiError> {
        let path = self.path.clone();
        tokio::spawn(async move { self.register_now(&subject, &input).await })
            .await
            .map_err(|e| {
                ApiError::Storage(Error::Io {
                    path,
                    source: io::Error::other(e),
                })
            })?
    }

    async fn register_now(&self, subject: &str, input: &SchemaInput) -> Result<u32, ApiError> {
        let mut state = self.state.write().await;
        let (parsed, identity) = state.parse_input(input)?;
        let existing_id = state.by_identity.get(&identity).copied();
        let versions = state.data.subjects.get(subject);

        if let (Some(id), Some(versions)) = (existing_id, versions)
            && let Some(entry) = versions.iter().find(|v| v.id == id)
        {
            tracing::debug!(
                subject,
                id,
                version = entry.version,
                "schema already registered"
            );
            return Ok(id);
        }

        if let Some(latest) = versions.and_then(|v| v.last()).copied() {
            let incompatible = |reason: String| {
                ApiError::Incompatible(format!(
                    "Schema being registered is incompatible with an earlier schema for subject \
                     \"{subject}\" (compatibility BACKWARD, checked against version {}), \
                     details: [{reason}]",
                    latest.version
                ))
            };
            let stored = state.schema(latest.id).ok_or(ApiError::SchemaNotFound)?;
            let previous = state
                .parse(&stored.schema, &stored.references)
                .map_err(|e| incompatible(format!("the latest version does not parse: {e}")))?;
            check_backward(&previous, &parsed).map_err(incompatible)?;
        }

        // Build the next state, persist it, and only then make it visible.
        let mut data = state.data.clone();
        let id = match existing_id {
            Some(id) => id,
            None => {
                let max = data.schemas.iter().map(|s| s.id).max().unwrap_or(0);
                let id = max
                    .checked_add(1)
                    .ok_or_else(|| ApiError::BadRequest("schema id space exhausted".to_owned()))?;
                data.schemas.push(StoredSchema {
                    id,
                    schema: input.schema.clone(),
                    references: input.references().to_vec(),
                });
                id
            }
        };
        let entries = data.subjects.entry(subject.to_owned()).or_default();
        let version = entries.last().map_or(1, |v| v.version.saturating_add(1));
        entries.push(SubjectVersion { version, id });

        persist(&self.path, &data).await.map_err(|e| {
            tracing::error!(subject, error = %e, "persisting the schema registry failed");
            ApiError::Storage(e)
        })?;

        if existing_id.is_none() {
            let index = data.schemas.len() - 1;
            state.by_id.insert(id, index);
            state.by_identity.insert(identity, id);
        }
        state.data = data;
        tracing::info!(
            subject,
            id,
            version,
            new_id = existing_id.is_none(),
            "schema registered"
        );
        Ok(id)
    }
}

fn parent_dir(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

async fn persist(path: &Path, data: &Persisted) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(data).map_err(|e| io_error(io::Error::other(e)))?;
    let target = path.to_owned();
    tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
        .await
        .map_err(|e| io_error(io::Error::other(e)))?
        .map_err(io_error)
}

/// Writes `bytes` to a temporary file next to `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory: a crash leaves either the old file or the new one, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = parent_dir(path).unwrap_or(Path::new("."));
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(schema: &str) -> SchemaInput {
        SchemaInput {
            schema: schema.to_owned(),
            schema_type: None,
            references: None,
        }
    }

    #[test]
    fn build_rejects_inconsistent_files() {
        let dangling: Persisted = serde_json::from_str(
            r#"{"format":1,"schemas":[],"subjects":{"s":[{"version":1,"id":7}]}}"#,
        )
        .expect("json");
        assert!(State::build(dangling).is_err());

        let duplicate: Persisted = serde_json::from_str(
            r#"{"format":1,"schemas":[{"id":1,"schema":"\"int\""},{"id":1,"schema":"\"long\""}],"subjects":{}}"#,
        )
        .expect("json");
        assert!(State::build(duplicate).is_err());

        let future: Persisted =
            serde_json::from_str(r#"{"format":2,"schemas":[],"subjects":{}}"#).expect("json");
        assert!(State::build(future).is_err());
    }

    #[test]
    fn build_tolerates_a_stored_schema_that_no_longer_parses() {
        let data: Persisted = serde_json::from_str(
            r#"{"format":1,"schemas":[{"id":1,"schema":"not avro"},{"id":2,"schema":"\"int\""}],"subjects":{"s":[{"version":1,"id":1},{"version":2,"id":2}]}}"#,
        )
        .expect("json");
        let state = State::build(data).expect("loads");
        assert_eq!(state.schema(1).map(|s| s.schema.as_str()), Some("not avro"));
        assert_eq!(state.by_identity.len(), 1);
    }

    #[tokio::test]
    async fn register_persists_before_answering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/registry.json");
        let store = Arc::new(Store::open(path.clone()).await.expect("open"));
        let id = store
            .clone()
            .register("s".to_owned(), input(r#""string""#))
            .await
            .expect("registers");
        assert_eq!(id, 1);
        assert_eq!(store.versions("s").await.expect("subject"), vec![1]);
        let on_disk: Persisted =
            serde_json::from_slice(&std::fs::read(&path).expect("file written")).expect("json");
        assert_eq!(on_disk.schemas.len(), 1);
        assert_eq!(on_disk.subjects["s"][0].id, 1);
        assert!(!dir.path().join("nested/.registry.json.tmp").exists());
    }

    #[tokio::test]
    async fn open_fails_early_when_the_file_cannot_be_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").expect("write");
        let err = Store::open(blocker.join("registry.json"))
            .await
            .expect_err("parent is a file");
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn failed_persist_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.json");
        let store = Arc::new(Store::open(path.clone()).await.expect("open"));
        assert!(path.is_file(), "open writes the empty registry");
        // A directory where the file should go makes the rename fail.
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("mkdir");
        let err = store
            .clone()
            .register("s".to_owned(), input(r#""string""#))
            .await
            .expect_err("cannot persist");
        assert!(matches!(err, ApiError::Storage(_)), "{err:?}");
        assert!(store.subjects().await.is_empty());
        assert!(matches!(
            store.schema_by_id(1).await,
            Err(ApiError::SchemaNotFound)
        ));
    }
}

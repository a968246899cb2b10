//! Connection profiles: a TOML file of named API URLs and keys, so keys stay off command lines.
//!
//! ```toml
//! [profiles.default]
//! url = "http://127.0.0.1:8080"
//! key = "rk_…"
//! ```
//!
//! The file is `$RECEIPTS_PROFILES`, else `$XDG_CONFIG_HOME/receipts/profiles.toml`, else
//! `~/.config/receipts/profiles.toml`. A file that holds a key must be private to its owner
//! (mode 0600 or stricter) or it is not read. (`RECEIPTS_CONFIG` already names the platform's
//! configuration file, hence another variable.)

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use url::Url;

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The profile file: `[profiles.<name>]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Hidden>,
}

/// A key as text; `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hidden(pub String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the profile file is, from the environment.
pub fn default_path() -> anyhow::Result<PathBuf> {
    path_from(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
}

fn path_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> anyhow::Result<PathBuf> {
    if let Some(path) = var("RECEIPTS_PROFILES") {
        return Ok(PathBuf::from(path));
    }
    let config = match var("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => match var("HOME") {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("neither RECEIPTS_PROFILES, XDG_CONFIG_HOME nor HOME is set"),
        },
    };
    Ok(config.join("receipts").join("profiles.toml"))
}

impl ProfileFile {
    /// The file at `path`, or `None` when there is none. Refuses a file that holds a key and
    /// others may read.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        if file.profiles.values().any(|p| p.key.is_some()) {
            check_private(path)?;
        }
        Ok(Some(file))
    }

    /// Parses the file's text. Errors name a line, never quote it (it may hold a key).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            match line {
                Some(line) => anyhow::anyhow!("line {line}: {}", e.message()),
                None => anyhow::anyhow!("{}", e.message()),
            }
        })
    }

    /// The profile `name` names (or the default one): a named profile must exist, the default
    /// one may be absent.
    pub fn select(&self, name: Option<&str>) -> anyhow::Result<Option<&Profile>> {
        match name {
            None => Ok(self.profiles.get(DEFAULT_PROFILE)),
            Some(name) => match self.profiles.get(name) {
                Some(profile) => Ok(Some(profile)),
                None => {
                    let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                    bail!(
                        "no profile {name:?} (known: {}); create it with `receipts profile set {name} --url URL --key-stdin`",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    )
                }
            },
        }
    }

    /// Writes the file readable by its owner only (its directory is created private too),
    /// replacing it whole.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(self).context("writing the profiles as TOML")?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let temporary = path.with_extension("toml.tmp");
        let written = (|| {
            let mut file = open_private(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written.with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} holds an API key but others may read it (mode {mode:04o}); not reading it. Run: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_found_by_variable_then_xdg_then_home() {
        let env = |vars: &[(&'static str, &'static str)]| {
            let vars = vars.to_vec();
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let all = [
            ("RECEIPTS_PROFILES", "/p.toml"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(path_from(env(&all)).expect("path"), Path::new("/p.toml"));
        assert_eq!(
            path_from(env(&all[1..])).expect("path"),
            Path::new("/xdg/receipts/profiles.toml")
        );
        assert_eq!(
            path_from(env(&all[2..])).expect("path"),
            Path::new("/home/u/.config/receipts/profiles.toml")
        );
        assert!(path_from(env(&[])).is_err());
    }

    #[test]
    fn parse_errors_name_the_line_but_not_its_text() {
        let error = ProfileFile::parse("[profiles.a]\nkey = rk_secret\n").expect_err("bad");
        let message = format!("{error:#}");
        assert!(message.contains("line 2"), "{message}");
        assert!(!message.contains("rk_secret"), "{message}");
        assert!(ProfileFile::parse("[profiles.a]\nkye = \"x\"\n").is_err());
    }

    #[test]
    fn a_named_profile_must_exist_the_default_may_not() {
        let file =
            ProfileFile::parse("[profiles.prod]\nurl = \"https://api.example/\"\nkey = \"rk_1\"\n")
                .expect("parse");
        assert!(file.select(Some("prod")).expect("prod").is_some());
        assert!(file.select(None).expect("default").is_none());
        let error = file.select(Some("staging")).expect_err("missing");
        assert!(error.to_string().contains("prod"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn saved_files_are_private_and_shared_ones_holding_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("receipts/profiles.toml");
        let mut file = ProfileFile::default();
        file.profiles.insert(
            "default".into(),
            Profile {
                url: Some("http://127.0.0.1:8080".parse().expect("url")),
                key: Some(Hidden("rk_secret".into())),
            },
        );
        file.save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ProfileFile::load(&path).expect("load"), Some(file));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = ProfileFile::load(&path).expect_err("refused");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        assert!(!error.to_string().contains("rk_secret"));

        // Without a key, a readable file is fine.
        std::fs::write(&path, "[profiles.a]\nurl = \"http://h/\"\n").expect("write");
        assert!(ProfileFile::load(&path).expect("load").is_some());
        assert_eq!(
            ProfileFile::load(&dir.path().join("none.toml")).expect("absent"),
            None
        );
    }
}

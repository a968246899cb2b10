//! Layered configuration: the struct's defaults, then a TOML file, then environment variables
//! (`RECEIPTS_` prefix, `__` between nesting levels: `RECEIPTS_KAFKA__BOOTSTRAP_SERVERS`).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "RECEIPTS_";
/// Environment variable naming the configuration file when no `--config` is given.
pub const CONFIG_FILE_ENV: &str = "RECEIPTS_CONFIG";

/// A configuration that could not be loaded; the message names the offending key and source.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

/// Loads `T` from its defaults, then `file` (or the file named by `RECEIPTS_CONFIG`), then the
/// environment. A named file that does not exist is an error, not silently skipped.
pub fn load_config<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    load_config_over(T::default(), file)
}

/// As [`load_config`], with `defaults` instead of `T::default()` (one type, several binaries
/// with different defaults).
pub fn load_config_over<T>(defaults: T, file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned,
{
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
    figment(defaults, file.as_deref())
        .extract()
        .map_err(|e| ConfigError(Box::new(e)))
}

fn figment<T: Serialize>(defaults: T, file: Option<&Path>) -> Figment {
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(path) = file {
        figment = figment.merge(Toml::file_exact(path));
    }
    // `CONFIG` names the file itself; `LOG` is reserved for log filters; `URL`, `KEY`, `PROFILE`
    // and `PROFILES` belong to the API client commands (docs/cli.md), which a shell may export
    // while it also runs the platform's.
    figment.merge(
        Env::prefixed(ENV_PREFIX)
            .split("__")
            .ignore(&["config", "log", "url", "key", "profile", "profiles"]),
    )
}

#[cfg(test)]
// figment's Jail closures return its (large) error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        name: String,
        nested: Nested,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Nested {
        port: u16,
        enabled: bool,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                name: "default".into(),
                nested: Nested::default(),
            }
        }
    }

    impl Default for Nested {
        fn default() -> Self {
            Self {
                port: 1,
                enabled: false,
            }
        }
    }

    #[test]
    fn defaults_then_file_then_env() {
        figment::Jail::expect_with(|jail| {
            let loaded: Sample = load_config(None).expect("loads");
            assert_eq!(loaded, Sample::default());

            jail.create_file("receipts.toml", "name = \"file\"\n[nested]\nport = 2\n")?;
            let loaded: Sample = load_config(Some(Path::new("receipts.toml"))).expect("loads");
            assert_eq!((loaded.name.as_str(), loaded.nested.port), ("file", 2));

            jail.set_env("RECEIPTS_NESTED__PORT", "3");
            jail.set_env("RECEIPTS_NESTED__ENABLED", "true");
            let loaded: Sample = load_config(Some(Path::new("receipts.toml"))).expect("loads");
            assert_eq!(
                loaded.nested,
                Nested {
                    port: 3,
                    enabled: true
                }
            );
            assert_eq!(loaded.name, "file");

            jail.set_env("RECEIPTS_CONFIG", "receipts.toml");
            jail.set_env("RECEIPTS_NESTED__ENABLED", "false");
            // The client commands' variables are not configuration.
            for name in ["URL", "KEY", "PROFILE", "PROFILES"] {
                jail.set_env(format!("RECEIPTS_{name}"), "x");
            }
            let loaded: Sample = load_config(None).expect("loads");
            assert_eq!(
                (loaded.name.as_str(), loaded.nested.enabled),
                ("file", false)
            );
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("RECEIPTS_NESTED__PORT", "not-a-port");
            let err = load_config::<Sample>(None).expect_err("bad port");
            assert!(err.to_string().contains("port"), "{err}");

            jail.clear_env();
            jail.set_env("RECEIPTS_NESTED__PROT", "1");
            let err = load_config::<Sample>(None).expect_err("typo");
            assert!(err.to_string().contains("prot"), "{err}");

            let err =
                load_config::<Sample>(Some(Path::new("missing.toml"))).expect_err("missing file");
            assert!(err.to_string().contains("missing.toml"), "{err}");
            Ok(())
        });
    }
}

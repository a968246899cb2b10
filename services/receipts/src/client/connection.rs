//! Which gateway a client command talks to, with which key: the flag, else the environment
//! variable, else the profile, else the embedded default's address (and no key). Keys are never
//! printed, logged or put in an error message.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{Args, Subcommand};
use receipts_client::{ApiKey, Client};
use url::Url;

use super::output::{self, write_table};
use super::profile::{self, DEFAULT_PROFILE, Hidden, Profile, ProfileFile};

/// Where `receipts up` serves the API (`gateway.listen`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// How to reach the API; in every client command.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// The API's base URL [default: the profile's, else http://127.0.0.1:8080].
    #[arg(
        long,
        env = "RECEIPTS_URL",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub url: Option<Url>,
    /// The API key. Prefer RECEIPTS_KEY or a profile: other local users can see command lines.
    #[arg(
        long,
        env = "RECEIPTS_KEY",
        hide_env_values = true,
        value_name = "KEY",
        value_parser = hidden,
        help_heading = "Connection"
    )]
    pub key: Option<Hidden>,
    /// The profile to read the URL and key from [default: "default", when it exists].
    #[arg(
        long,
        env = "RECEIPTS_PROFILE",
        value_name = "NAME",
        help_heading = "Connection"
    )]
    pub profile: Option<String>,
}

/// Never fails, so clap never quotes the value in an error.
fn hidden(value: &str) -> Result<Hidden, std::convert::Infallible> {
    Ok(Hidden(value.to_owned()))
}

/// A resolved connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub url: Url,
    pub key: Option<Hidden>,
}

impl ConnectionArgs {
    /// The client these arguments, the environment and the profile file describe.
    pub fn client(&self) -> anyhow::Result<Client> {
        let connection = self.resolve()?;
        let key = connection
            .key
            .map(|Hidden(key)| ApiKey::new(key))
            .transpose()?;
        Ok(Client::new(connection.url, key)?)
    }

    fn resolve(&self) -> anyhow::Result<Connection> {
        // The file is read only when it can matter.
        let profile = if self.profile.is_some() || self.url.is_none() || self.key.is_none() {
            let path = profile::default_path()?;
            match ProfileFile::load(&path)? {
                Some(file) => file.select(self.profile.as_deref())?.cloned(),
                None if self.profile.is_some() => anyhow::bail!(
                    "no profile file at {} (create it with `receipts profile set NAME --url URL --key-stdin`)",
                    path.display()
                ),
                None => None,
            }
        } else {
            None
        };
        Ok(self.choose(profile.as_ref()))
    }

    /// Flag or environment (clap already chose between them), else the profile, else defaults.
    fn choose(&self, profile: Option<&Profile>) -> Connection {
        let default_url = || Url::parse(DEFAULT_URL).expect("a valid constant URL");
        Connection {
            url: self
                .url
                .clone()
                .or_else(|| profile.and_then(|p| p.url.clone()))
                .unwrap_or_else(default_url),
            key: self
                .key
                .clone()
                .or_else(|| profile.and_then(|p| p.key.clone())),
        }
    }
}

/// `receipts profile …`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Create or change a profile. The key is read from standard input (--key-stdin), never
    /// from the command line; the file is written readable by you only (0600).
    #[command(after_help = SET_EXAMPLES)]
    Set {
        /// The profile's name ("default" is used when no --profile or RECEIPTS_PROFILE is given).
        name: String,
        /// The API's base URL.
        #[arg(long, value_name = "URL")]
        url: Option<Url>,
        /// Read the API key from standard input (its first line).
        #[arg(long)]
        key_stdin: bool,
        /// Forget the profile's key.
        #[arg(long, conflicts_with = "key_stdin")]
        no_key: bool,
    },
    /// List the profiles (never their keys).
    List,
    /// Delete a profile.
    Remove { name: String },
}

const SET_EXAMPLES: &str = "\
Examples:
  receipts profile set default --url http://127.0.0.1:8080 --key-stdin < data/dev-api-key
  printf '%s' \"$KEY\" | receipts profile set prod --url https://receipts.example.com --key-stdin
  receipts list --profile prod        # or: RECEIPTS_PROFILE=prod receipts list";

/// Runs a `profile` command.
pub fn profile(command: ProfileCommand) -> anyhow::Result<u8> {
    let path = profile::default_path()?;
    match command {
        ProfileCommand::Set {
            name,
            url,
            key_stdin,
            no_key,
        } => {
            anyhow::ensure!(
                !name.is_empty() && !name.contains(['.', '"', '\n']),
                "a profile name is a plain word, such as prod"
            );
            let key = if key_stdin { Some(read_key()?) } else { None };
            let mut file = ProfileFile::load(&path)?.unwrap_or_default();
            let entry = file.profiles.entry(name.clone()).or_default();
            if let Some(url) = url {
                entry.url = Some(url);
            }
            if let Some(key) = key {
                entry.key = Some(Hidden(key.expose().to_owned()));
            }
            if no_key {
                entry.key = None;
            }
            file.save(&path)?;
            eprintln!("profile {name} saved in {}", path.display());
        }
        ProfileCommand::List => {
            let file = ProfileFile::load(&path)?.unwrap_or_default();
            let active = std::env::var("RECEIPTS_PROFILE").unwrap_or(DEFAULT_PROFILE.into());
            let mut lines = vec![vec!["".into(), "name".into(), "url".into(), "key".into()]];
            for (name, p) in &file.profiles {
                lines.push(vec![
                    if *name == active { "*" } else { "" }.into(),
                    name.clone(),
                    output::or_dash(p.url.as_ref().map(Url::as_str)),
                    if p.key.is_some() { "set" } else { "-" }.into(),
                ]);
            }
            write_table(&mut std::io::stdout().lock(), &lines)?;
            eprintln!("({})", path.display());
        }
        ProfileCommand::Remove { name } => {
            let mut file = ProfileFile::load(&path)?.unwrap_or_default();
            anyhow::ensure!(
                file.profiles.remove(&name).is_some(),
                "no profile {name:?} in {}",
                path.display()
            );
            file.save(&path)?;
            eprintln!("profile {name} removed");
        }
    }
    Ok(super::exit::OK)
}

/// The first line of standard input (prompted for when it is a terminal; the key then shows as
/// it is typed, but stays out of the shell's history).
fn read_key() -> anyhow::Result<ApiKey> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("API key: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the key from standard input")?;
    Ok(ApiKey::new(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(url: &str, key: &str) -> Profile {
        Profile {
            url: Some(url.parse().expect("url")),
            key: Some(Hidden(key.into())),
        }
    }

    #[test]
    fn flags_and_environment_win_over_the_profile_which_wins_over_defaults() {
        let saved = profile("https://saved.example/", "rk_saved");
        let none = ConnectionArgs::default();
        assert_eq!(
            none.choose(None),
            Connection {
                url: DEFAULT_URL.parse().expect("url"),
                key: None
            }
        );
        assert_eq!(
            none.choose(Some(&saved)),
            Connection {
                url: "https://saved.example/".parse().expect("url"),
                key: Some(Hidden("rk_saved".into()))
            }
        );
        let given = ConnectionArgs {
            url: Some("http://given:1/".parse().expect("url")),
            key: Some(Hidden("rk_given".into())),
            profile: None,
        };
        assert_eq!(
            given.choose(Some(&saved)),
            Connection {
                url: "http://given:1/".parse().expect("url"),
                key: Some(Hidden("rk_given".into()))
            }
        );
        // Each value on its own: the key from the profile, the URL from the flag.
        let url_only = ConnectionArgs { key: None, ..given };
        assert_eq!(
            url_only.choose(Some(&saved)).key,
            Some(Hidden("rk_saved".into()))
        );
    }

    #[test]
    fn connection_arguments_never_debug_print_the_key() {
        let args = ConnectionArgs {
            key: Some(Hidden("rk_secret".into())),
            ..Default::default()
        };
        assert!(!format!("{args:?}").contains("rk_secret"));
    }
}

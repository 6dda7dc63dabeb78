//! The WebRTC sidecar's ICE servers as flags: one `--ice-server` per server, its value a URL
//! (no credentials) or a JSON object naming the URLs and the files its credentials are read
//! from, each server's Secret mounted in a directory of its own under [`ICE_DIR`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where the ICE servers' Secrets are mounted: `ICE_DIR/<index>/<key>`.
pub const ICE_DIR: &str = "/etc/remotemedia/ice";
/// A static credential's username key in its Secret.
pub const ICE_USERNAME_KEY: &str = "username";
/// A static credential's password key in its Secret.
pub const ICE_CREDENTIAL_KEY: &str = "credential";
/// The shared secret's key in the Secret of a server whose credentials are minted.
pub const ICE_SECRET_KEY: &str = "secret";

/// One `--ice-server` of the WebRTC sidecar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceServerFlag {
    /// `stun:`, `turn:` and `turns:` URLs.
    pub urls: Vec<String>,
    /// Where its credentials come from.
    #[serde(default, skip_serializing_if = "IceCredentialFiles::is_none")]
    pub credentials: IceCredentialFiles,
}

/// Where an ICE server's credentials come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum IceCredentialFiles {
    /// None (STUN).
    #[default]
    None,
    /// The same username and password for every client, read from two files.
    #[serde(rename_all = "camelCase")]
    Static {
        /// The username's file.
        username_file: PathBuf,
        /// The password's file.
        credential_file: PathBuf,
    },
    /// Minted for each client from the shared secret in a file (TURN REST), valid for
    /// `ttl_seconds`.
    #[serde(rename_all = "camelCase")]
    Ephemeral {
        /// The shared secret's file.
        secret_file: PathBuf,
        /// Validity of a minted credential.
        ttl_seconds: u32,
    },
}

impl IceCredentialFiles {
    fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// Static credentials from the Secret mounted for ICE server `index`.
    #[must_use]
    pub fn static_secret(index: usize) -> Self {
        let dir = ice_secret_dir(index);
        Self::Static {
            username_file: dir.join(ICE_USERNAME_KEY),
            credential_file: dir.join(ICE_CREDENTIAL_KEY),
        }
    }

    /// Credentials minted from the shared secret in the Secret mounted for ICE server `index`.
    #[must_use]
    pub fn ephemeral_secret(index: usize, ttl_seconds: u32) -> Self {
        Self::Ephemeral {
            secret_file: ice_secret_dir(index).join(ICE_SECRET_KEY),
            ttl_seconds,
        }
    }
}

/// Where the Secret of ICE server `index` (its place in the Pipeline's list) is mounted.
#[must_use]
pub fn ice_secret_dir(index: usize) -> PathBuf {
    Path::new(ICE_DIR).join(index.to_string())
}

/// Why an `--ice-server` value does not parse.
#[derive(Debug, thiserror::Error)]
pub enum IceServerFlagError {
    /// Neither a `stun:`/`turn:`/`turns:` URL nor a JSON object.
    #[error("{0:?} is not a stun:, turn: or turns: URL, nor a JSON object {{\"urls\": [...]}}")]
    NotAUrl(String),
    /// The JSON object is malformed.
    #[error("the --ice-server object: {0}")]
    Json(#[from] serde_json::Error),
    /// No URLs, or one that is not a STUN or TURN URL.
    #[error("the --ice-server object: {0}")]
    Urls(String),
}

fn is_ice_url(url: &str) -> bool {
    ["stun:", "stuns:", "turn:", "turns:"]
        .iter()
        .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len())
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

impl FromStr for IceServerFlag {
    type Err = IceServerFlagError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if !value.trim_start().starts_with('{') {
            if !is_ice_url(value) {
                return Err(IceServerFlagError::NotAUrl(value.to_owned()));
            }
            return Ok(Self {
                urls: vec![value.to_owned()],
                credentials: IceCredentialFiles::None,
            });
        }
        let flag: Self = serde_json::from_str(value)?;
        if flag.urls.is_empty() {
            return Err(IceServerFlagError::Urls("\"urls\" is empty".to_owned()));
        }
        if let Some(bad) = flag.urls.iter().find(|url| !is_ice_url(url)) {
            return Err(IceServerFlagError::Urls(format!(
                "{bad:?} is not a stun:, turn: or turns: URL"
            )));
        }
        Ok(flag)
    }
}

impl fmt::Display for IceServerFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.urls[..], &self.credentials) {
            ([url], IceCredentialFiles::None) => f.write_str(url),
            _ => {
                // Cannot fail: strings, paths from UTF-8 and integers.
                let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
                f.write_str(&json)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_their_text() {
        let flags = [
            IceServerFlag {
                urls: vec!["stun:stun.example.net:3478".to_owned()],
                credentials: IceCredentialFiles::None,
            },
            IceServerFlag {
                urls: vec![
                    "turn:relay.example.net:3478?transport=udp".to_owned(),
                    "turns:relay.example.net:5349?transport=tcp".to_owned(),
                ],
                credentials: IceCredentialFiles::ephemeral_secret(1, 600),
            },
            IceServerFlag {
                urls: vec!["turn:relay.example.net:3478".to_owned()],
                credentials: IceCredentialFiles::static_secret(0),
            },
        ];
        for flag in flags {
            let text = flag.to_string();
            assert_eq!(text.parse::<IceServerFlag>().unwrap(), flag, "{text}");
        }
        assert_eq!(
            IceCredentialFiles::ephemeral_secret(1, 600),
            IceCredentialFiles::Ephemeral {
                secret_file: "/etc/remotemedia/ice/1/secret".into(),
                ttl_seconds: 600
            }
        );
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (value, says) in [
            ("relay.example.net:3478", "not a stun:, turn: or turns: URL"),
            ("{\"urls\": []}", "\"urls\" is empty"),
            ("{\"urls\": [\"http://x\"]}", "\"http://x\" is not a stun:"),
            (
                "{\"urls\": [\"turn:x\"], \"ttl\": 3}",
                "unknown field `ttl`",
            ),
            ("turn:<x>", "not a stun:"),
        ] {
            let err = value.parse::<IceServerFlag>().unwrap_err().to_string();
            assert!(err.contains(says), "{value}: {err}");
        }
    }
}

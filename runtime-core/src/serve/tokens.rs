//! Bearer tokens a server accepts (`--token-file`): read from their file (and again when it
//! changes, see [`Tokens::reload`]), compared in constant time. Transports map a refusal to
//! their own wire error (gRPC UNAUTHENTICATED, HTTP 401).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// The accepted tokens; cheap to clone, and every clone sees a reload.
#[derive(Clone)]
pub struct Tokens {
    list: Arc<RwLock<Arc<[String]>>>,
    /// Where they were read from, for [`Tokens::reload`].
    file: Option<Arc<PathBuf>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} tokens)", self.current().len())
    }
}

/// Why a token file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be read.
    #[error("reading token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It holds no token.
    #[error(
        "token file {path} holds no token (one per line; blank lines and # comments are skipped)"
    )]
    Empty {
        /// The file.
        path: String,
    },
}

/// Why a request's credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No `authorization` header.
    #[error("missing `authorization: Bearer <token>`")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("`authorization` must be `Bearer <token>`")]
    Malformed,
    /// The token is not one of the accepted ones.
    #[error("unknown token")]
    Unknown,
}

impl Tokens {
    /// Reads tokens from `path`, one per line (blank lines and `#` comments skipped), so tokens
    /// can be rotated by listing old and new ones together.
    ///
    /// # Errors
    ///
    /// The file cannot be read or holds no token.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        Ok(Self {
            list: Arc::new(RwLock::new(read_list(path)?)),
            file: Some(Arc::new(path.to_owned())),
        })
    }

    /// Exactly these tokens (no file).
    #[must_use]
    pub fn of(tokens: &[&str]) -> Self {
        Self {
            list: Arc::new(RwLock::new(tokens.iter().map(|&t| t.to_owned()).collect())),
            file: None,
        }
    }

    /// Reads the file again; a changed list replaces the old one for every clone.
    /// `Ok(true)` when it changed.
    ///
    /// # Errors
    ///
    /// The file cannot be read or holds no token: the old list stays.
    pub fn reload(&self) -> Result<bool, TokenFileError> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let list = read_list(file)?;
        if *self.current() == *list {
            return Ok(false);
        }
        *self.list.write().unwrap_or_else(PoisonError::into_inner) = list;
        Ok(true)
    }

    fn current(&self) -> Arc<[String]> {
        self.list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks the value of an `authorization` header (`None` when absent).
    ///
    /// # Errors
    ///
    /// [`TokenRefusal`] naming what is wrong.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), TokenRefusal> {
        self.holder(authorization).map(|_| ())
    }

    /// Checks the value of an `authorization` header and says which accepted token it holds,
    /// so what one caller opened can be told apart from what another did.
    ///
    /// # Errors
    ///
    /// [`TokenRefusal`] naming what is wrong.
    pub fn holder(&self, authorization: Option<&str>) -> Result<TokenHolder, TokenRefusal> {
        let header = authorization.ok_or(TokenRefusal::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(TokenRefusal::Malformed)?;
        // Every listed token is compared, matched or not, so timing says nothing of the list.
        let list = self.current();
        let matched = list.iter().enumerate().fold(None, |found, (i, t)| {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                Some(i)
            } else {
                found
            }
        });
        matched
            .map(|i| TokenHolder(Arc::from(list[i].as_str())))
            .ok_or(TokenRefusal::Unknown)
    }
}

fn read_list(path: &Path) -> Result<Arc<[String]>, TokenFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
        path: shown.clone(),
        source,
    })?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(TokenFileError::Empty { path: shown });
    }
    Ok(tokens.into())
}

/// The accepted token a request presented (compared in constant time; never printed).
#[derive(Clone)]
pub struct TokenHolder(Arc<str>);

impl PartialEq for TokenHolder {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for TokenHolder {}

impl std::fmt::Debug for TokenHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHolder(..)")
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::of(&["old-secret", "new-secret"])
    }

    #[test]
    fn the_holder_says_which_token_was_presented() {
        let tokens = tokens();
        let old = tokens.holder(Some("Bearer old-secret")).unwrap();
        let new = tokens.holder(Some("Bearer new-secret")).unwrap();
        assert_ne!(old, new);
        assert_eq!(old, tokens.holder(Some("Bearer old-secret")).unwrap());
        assert_eq!(
            tokens.holder(Some("Bearer old-secre")),
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(format!("{old:?}"), "TokenHolder(..)", "never printed");
    }

    #[test]
    fn any_listed_token_passes_and_everything_else_is_refused_with_its_reason() {
        assert_eq!(tokens().check(Some("Bearer new-secret")), Ok(()));
        assert_eq!(tokens().check(Some("Bearer old-secret")), Ok(()));
        assert_eq!(tokens().check(None), Err(TokenRefusal::Missing));
        assert_eq!(
            tokens().check(Some("new-secret")),
            Err(TokenRefusal::Malformed)
        );
        assert_eq!(
            tokens().check(Some("Bearer nope")),
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(
            tokens().check(Some("Bearer new-secre")),
            Err(TokenRefusal::Unknown)
        );
    }

    #[test]
    fn token_files_skip_comments_and_refuse_to_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# rotated 2026-11\n\n  abc  \n").unwrap();
        let tokens = Tokens::from_file(&path).unwrap();
        assert_eq!(tokens.check(Some("Bearer abc")), Ok(()));
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(
            Tokens::from_file(&path),
            Err(TokenFileError::Empty { .. })
        ));
    }

    #[test]
    fn a_reload_replaces_the_list_for_every_clone_and_a_bad_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "first\n").unwrap();
        let tokens = Tokens::from_file(&path).unwrap();
        let clone = tokens.clone();
        assert!(!tokens.reload().unwrap(), "unchanged");
        std::fs::write(&path, "second\n").unwrap();
        assert!(tokens.reload().unwrap());
        assert_eq!(clone.check(Some("Bearer second")), Ok(()));
        assert_eq!(
            clone.check(Some("Bearer first")),
            Err(TokenRefusal::Unknown)
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(tokens.reload(), Err(TokenFileError::Empty { .. })));
        assert_eq!(
            clone.check(Some("Bearer second")),
            Ok(()),
            "the old list stays"
        );
    }
}

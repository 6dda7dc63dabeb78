//! Bearer-token authentication: `authorization: Bearer <token>` on every call of a protected
//! service. Health checks stay open so that probes need no secret.

use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Accepts calls that carry one of the configured tokens (or every call, when built with
/// [`BearerAuth::allow_all`]).
#[derive(Clone)]
pub struct BearerAuth {
    /// `None`: no token required.
    tokens: Option<std::sync::Arc<[String]>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tokens {
            Some(tokens) => write!(f, "BearerAuth({} tokens)", tokens.len()),
            None => f.write_str("BearerAuth(open)"),
        }
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

impl BearerAuth {
    /// Reads tokens from `path`, one per line (blank lines and `#` comments skipped), so tokens
    /// can be rotated by listing old and new ones together.
    ///
    /// # Errors
    /// The file cannot be read or holds no token.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TokenFileError> {
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
        Ok(Self {
            tokens: Some(tokens.into()),
        })
    }

    /// Lets every call through (no token file configured).
    #[must_use]
    pub fn allow_all() -> Self {
        Self { tokens: None }
    }

    /// Checks a call's metadata.
    ///
    /// # Errors
    /// UNAUTHENTICATED when the token is missing, malformed or unknown.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("`authorization` must be `Bearer <token>`"))?;
        if tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
        {
            Ok(())
        } else {
            Err(Status::unauthenticated("unknown token"))
        }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BearerAuth {
        BearerAuth {
            tokens: Some(vec!["old-secret".to_owned(), "new-secret".to_owned()].into()),
        }
    }

    fn with(header: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(h) = header {
            m.insert("authorization", h.parse().unwrap());
        }
        m
    }

    #[test]
    fn any_listed_token_passes_and_everything_else_is_unauthenticated() {
        assert!(auth().check(&with(Some("Bearer new-secret"))).is_ok());
        assert!(auth().check(&with(Some("Bearer old-secret"))).is_ok());
        for bad in [
            None,
            Some("Bearer nope"),
            Some("new-secret"),
            Some("Bearer new-secre"),
        ] {
            let status = auth().check(&with(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }

    #[test]
    fn token_files_skip_comments_and_refuse_to_be_empty() {
        let dir = std::env::temp_dir().join(format!("rm-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "# rotated 2026-11\n\n  abc  \n").unwrap();
        let auth = BearerAuth::from_file(&path).unwrap();
        assert!(auth.check(&with(Some("Bearer abc"))).is_ok());
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(
            BearerAuth::from_file(&path),
            Err(TokenFileError::Empty { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

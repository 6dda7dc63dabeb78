//! Bearer-token authentication: `authorization: Bearer <token>` on every call of a protected
//! service. Health checks stay open so that probes need no secret.

use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

pub use remotemedia_runtime_core::serve::{TokenFileError, Tokens};

/// Accepts calls that carry one of the configured tokens (or every call, when built with
/// [`BearerAuth::allow_all`]).
#[derive(Clone, Debug)]
pub struct BearerAuth {
    /// `None`: no token required.
    tokens: Option<Tokens>,
}

impl BearerAuth {
    /// Reads tokens from `path` (see [`Tokens::from_file`]).
    ///
    /// # Errors
    /// The file cannot be read or holds no token.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TokenFileError> {
        Ok(Self {
            tokens: Some(Tokens::from_file(path)?),
        })
    }

    /// Accepts calls carrying one of `tokens` (reloads included).
    #[must_use]
    pub fn new(tokens: Tokens) -> Self {
        Self {
            tokens: Some(tokens),
        }
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
            .map(|h| h.to_str().unwrap_or(""));
        tokens
            .check(header)
            .map_err(|refusal| Status::unauthenticated(refusal.to_string()))
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(header: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(h) = header {
            m.insert("authorization", h.parse().unwrap());
        }
        m
    }

    #[test]
    fn refusals_are_unauthenticated_and_open_servers_let_everything_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "secret\n").unwrap();
        let auth = BearerAuth::from_file(&path).unwrap();
        assert!(auth.check(&with(Some("Bearer secret"))).is_ok());
        for bad in [None, Some("Bearer nope"), Some("secret")] {
            let status = auth.check(&with(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
        assert!(BearerAuth::allow_all().check(&with(None)).is_ok());
    }
}

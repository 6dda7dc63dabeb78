//! TLS for the transports' listeners (rustls): a certificate chain and key from PEM files, read
//! again when they change, so a renewal (cert-manager, a rotated Secret) needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, crypto::ring};

/// `--tls-cert FILE --tls-key FILE`: serve TLS (both or neither).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsFlags {
    /// Serve TLS with this certificate chain (PEM, leaf first); read again when it changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1); read again when it
    /// changes.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsFlags {
    /// The files, when TLS is asked for.
    #[must_use]
    pub fn files(&self) -> Option<CertificateFiles> {
        Some(CertificateFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }
}

/// Where a server's certificate chain and key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{}: no PEM certificate in it ({source})", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// The key file holds no PEM private key.
    #[error("{}: no PEM private key in it ({source})", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// The key is of a kind rustls cannot sign with, or is not the certificate's.
    #[error("{} and {}: {source}", key.display(), cert.display())]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

impl CertificateFiles {
    fn read(path: &Path) -> Result<Vec<u8>, CertificateError> {
        std::fs::read(path).map_err(|source| CertificateError::Read {
            path: path.to_owned(),
            source,
        })
    }

    /// Both files' bytes, as they are now.
    fn contents(&self) -> Result<(Vec<u8>, Vec<u8>), CertificateError> {
        Ok((Self::read(&self.cert)?, Self::read(&self.key)?))
    }

    fn parse(&self, cert: &[u8], key: &[u8]) -> Result<CertifiedKey, CertificateError> {
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| CertificateError::NoCertificate {
                path: self.cert.clone(),
                source,
            })?;
        if chain.is_empty() {
            return Err(CertificateError::NoCertificate {
                path: self.cert.clone(),
                source: rustls::pki_types::pem::Error::NoItemsFound,
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|source| CertificateError::NoKey {
            path: self.key.clone(),
            source,
        })?;
        CertifiedKey::from_der(chain, key, &provider()).map_err(|source| {
            CertificateError::Unusable {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            }
        })
    }
}

pub(crate) fn provider() -> CryptoProvider {
    ring::default_provider()
}

/// The certificate a server presents, swapped for the files' new contents when they change.
pub struct ReloadingCertificate {
    files: CertificateFiles,
    current: RwLock<Current>,
}

struct Current {
    key: Arc<CertifiedKey>,
    /// The files' bytes it was made from, to tell a change.
    contents: (Vec<u8>, Vec<u8>),
}

impl std::fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertificate {
    /// Loads the certificate from `files`.
    ///
    /// # Errors
    /// [`CertificateError`] naming the file and what is wrong with it.
    pub fn load(files: CertificateFiles) -> Result<Arc<Self>, CertificateError> {
        let contents = files.contents()?;
        let key = Arc::new(files.parse(&contents.0, &contents.1)?);
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Current { key, contents }),
        }))
    }

    /// Reads the files again; a changed, valid pair replaces the certificate for new
    /// connections (open ones keep theirs). `Ok(true)` when it changed.
    ///
    /// # Errors
    /// The new files are unusable; the certificate served stays the old one. A renewal that
    /// writes the two files one after the other is caught on a later call.
    pub fn reload(&self) -> Result<bool, CertificateError> {
        let contents = self.files.contents()?;
        if self.lock_read().contents == contents {
            return Ok(false);
        }
        let key = Arc::new(self.files.parse(&contents.0, &contents.1)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current { key, contents };
        Ok(true)
    }

    /// The certificate and key presented now.
    #[must_use]
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.lock_read().key.clone()
    }

    /// The files it is read from.
    #[must_use]
    pub fn files(&self) -> &CertificateFiles {
        &self.files
    }

    fn lock_read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// A rustls server configuration presenting this certificate, offering `alpn` protocols
    /// (`h2` for gRPC; `h2` and `http/1.1` for HTTP servers).
    #[must_use]
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            // Cannot fail: the provider is rustls' own, with its default versions.
            .expect("ring supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.lock_read().key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> CertificateFiles {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let files = CertificateFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
        files
    }

    fn served(certificate: &ReloadingCertificate) -> Vec<u8> {
        certificate.lock_read().key.cert[0].to_vec()
    }

    #[test]
    fn a_changed_pair_replaces_the_certificate_and_a_broken_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "one.test");
        let certificate = ReloadingCertificate::load(files.clone()).unwrap();
        let first = served(&certificate);
        assert!(!certificate.reload().unwrap(), "unchanged files");

        write_pair(dir.path(), "two.test");
        assert!(certificate.reload().unwrap());
        let second = served(&certificate);
        assert_ne!(first, second);

        // A key that is not the certificate's (half a renewal): refused, the old one stays.
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&files.key, other.serialize_pem()).unwrap();
        let refused = certificate.reload().unwrap_err();
        assert!(
            matches!(refused, CertificateError::Unusable { .. }),
            "{refused}"
        );
        assert_eq!(served(&certificate), second);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "one.test");
        std::fs::write(&files.cert, "not a certificate").unwrap();
        let e = ReloadingCertificate::load(files.clone()).unwrap_err();
        assert!(e.to_string().contains("tls.crt: no PEM certificate"), "{e}");

        write_pair(dir.path(), "one.test");
        std::fs::write(&files.key, "").unwrap();
        let e = ReloadingCertificate::load(files.clone()).unwrap_err();
        assert!(e.to_string().contains("tls.key: no PEM private key"), "{e}");

        std::fs::remove_file(&files.key).unwrap();
        let e = ReloadingCertificate::load(files).unwrap_err();
        assert!(e.to_string().starts_with("reading "), "{e}");
    }
}

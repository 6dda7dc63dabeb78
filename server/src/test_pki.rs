//! A certificate authority for tests (feature `test-pki`): the transports' TLS tests make a CA,
//! give the server a certificate it signed, and have real clients trust the CA.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use crate::CertificateFiles;

/// A CA that signs server certificates.
pub struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA named `name`.
    ///
    /// # Panics
    /// When rcgen cannot make a key (a broken build).
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let key = KeyPair::generate().expect("a key");
        let cert = params.self_signed(&key).expect("a CA certificate");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM: what clients trust.
    #[must_use]
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (DNS names or IP addresses) and its key, PEM.
    ///
    /// # Panics
    /// When a name is not acceptable to rcgen.
    #[must_use]
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("acceptable names");
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the CA (`ca.crt`) and a server certificate for `names` (`tls.crt`, `tls.key`, the
    /// key names of a `kubernetes.io/tls` Secret) into `dir`; replaces them if present.
    ///
    /// # Panics
    /// When the files cannot be written.
    #[must_use]
    pub fn write_server_files(&self, dir: &Path, names: &[&str]) -> CertificateFiles {
        let (cert, key) = self.issue(names);
        let files = CertificateFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        std::fs::write(dir.join("ca.crt"), &self.pem).expect("write ca.crt");
        // The key first: a reload between the two writes sees a mismatch and keeps the old pair.
        std::fs::write(&files.key, key).expect("write tls.key");
        std::fs::write(&files.cert, cert).expect("write tls.crt");
        files
    }
}

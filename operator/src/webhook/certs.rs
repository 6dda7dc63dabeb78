//! The webhook's own TLS certificate: a private CA and a serving certificate made with rcgen,
//! kept in a Secret so that every operator replica serves the same one, and the CA injected
//! into the ValidatingWebhookConfiguration. No cert-manager needed.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{Timestamp, ToSpan, tz::TimeZone};
use kube::api::PostParams;
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

const NOT_AFTER_KEY: &str = "remotemedia.dev/not-after";
/// The key of the replaced CA in the Secret.
const PREVIOUS_CA_KEY: &str = "ca-previous.crt";
const SANS_KEY: &str = "remotemedia.dev/subject-alt-names";
/// A stored certificate closer than this to expiry is replaced at start.
const RENEW_BEFORE_DAYS: i64 = 30;
const VALID_DAYS: i64 = 365;

/// Why the serving certificate could not be made, stored or published.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters.
    #[error("generating the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The stored Secret lacks a key.
    #[error("Secret {0} lacks {1}")]
    Incomplete(String, &'static str),
}

/// A CA and a serving certificate signed by it, PEM-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    /// The CA certificate (what the apiserver trusts: the webhook's `caBundle`).
    pub ca_pem: String,
    /// The CA this one replaced, trusted too until every replica serves the new certificate
    /// (a replica reloads within its check period; until then it serves the old one).
    pub previous_ca_pem: Option<String>,
    /// The serving certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// Expiry, RFC 3339.
    pub not_after: String,
}

/// Makes a fresh CA and a serving certificate for `subject_alt_names` (DNS names or IPs).
///
/// # Errors
/// [`CertError::Generate`] when a name is not acceptable.
pub fn generate(subject_alt_names: &[String]) -> Result<ServingCert, CertError> {
    let now = Timestamp::now();
    let not_after = now + (VALID_DAYS * 24).hours();
    let (start, end) = (civil(now - 24.hours()), civil(not_after));

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "remotemedia-operator webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = date_time_ymd(start.0, start.1, start.2);
    ca_params.not_after = date_time_ymd(end.0, end.1, end.2);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(subject_alt_names.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        subject_alt_names
            .first()
            .map_or("remotemedia-operator", String::as_str),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = date_time_ymd(start.0, start.1, start.2);
    params.not_after = date_time_ymd(end.0, end.1, end.2);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(ServingCert {
        ca_pem: ca_cert.pem(),
        previous_ca_pem: None,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: not_after.to_string(),
    })
}

/// (year, month, day) of `t` in UTC, for rcgen's `date_time_ymd`.
fn civil(t: Timestamp) -> (i32, u8, u8) {
    let date = t.to_zoned(TimeZone::UTC).date();
    (
        i32::from(date.year()),
        date.month().unsigned_abs(),
        date.day().unsigned_abs(),
    )
}

/// Returns the serving certificate stored in Secret `namespace/name`, or makes one and stores
/// it there when it is missing, for other names, or close to expiry. When two replicas race,
/// the one that loses reads the winner's certificate.
///
/// # Errors
/// An API failure other than the create race.
pub async fn ensure_serving_cert(
    client: &Client,
    namespace: &str,
    name: &str,
    subject_alt_names: &[String],
) -> Result<ServingCert, CertError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let wanted_sans = subject_alt_names.join(",");
    for _ in 0..3 {
        let existing = secrets
            .get_opt(name)
            .await
            .map_err(|source| CertError::Api {
                action: format!("get Secret {namespace}/{name}"),
                source,
            })?;
        if let Some(secret) = &existing
            && let Some(cert) = usable(secret, &wanted_sans)
        {
            return cert;
        }
        let mut cert = generate(subject_alt_names)?;
        // Replicas still serving the old certificate stay trusted through the change.
        cert.previous_ca_pem = existing
            .as_ref()
            .and_then(|old| old.data.as_ref()?.get("ca.crt"))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        let mut secret = to_secret(&cert, namespace, name, &wanted_sans);
        let result = match existing {
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version;
                secrets.replace(name, &PostParams::default(), &secret).await
            }
            None => secrets.create(&PostParams::default(), &secret).await,
        };
        match result {
            Ok(_) => return Ok(cert),
            // Another replica wrote it first: use theirs.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => {
                return Err(CertError::Api {
                    action: format!("store Secret {namespace}/{name}"),
                    source,
                });
            }
        }
    }
    Err(CertError::Incomplete(
        format!("{namespace}/{name}"),
        "a stable value (kept changing)",
    ))
}

fn usable(secret: &Secret, wanted_sans: &str) -> Option<Result<ServingCert, CertError>> {
    let annotations = secret.metadata.annotations.as_ref()?;
    if annotations.get(SANS_KEY).map(String::as_str) != Some(wanted_sans) {
        return None;
    }
    let not_after: Timestamp = annotations.get(NOT_AFTER_KEY)?.parse().ok()?;
    if not_after < Timestamp::now() + (RENEW_BEFORE_DAYS * 24).hours() {
        return None;
    }
    let data = secret.data.as_ref()?;
    let field = |key: &'static str| {
        data.get(key)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .ok_or_else(|| {
                CertError::Incomplete(secret.metadata.name.clone().unwrap_or_default(), key)
            })
    };
    Some((|| {
        Ok(ServingCert {
            ca_pem: field("ca.crt")?,
            previous_ca_pem: field(PREVIOUS_CA_KEY).ok(),
            cert_pem: field("tls.crt")?,
            key_pem: field("tls.key")?,
            not_after: not_after.to_string(),
        })
    })())
}

fn to_secret(cert: &ServingCert, namespace: &str, name: &str, sans: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            annotations: Some(BTreeMap::from([
                (NOT_AFTER_KEY.to_owned(), cert.not_after.clone()),
                (SANS_KEY.to_owned(), sans.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(
            BTreeMap::from([
                (
                    "ca.crt".to_owned(),
                    ByteString(cert.ca_pem.clone().into_bytes()),
                ),
                (
                    "tls.crt".to_owned(),
                    ByteString(cert.cert_pem.clone().into_bytes()),
                ),
                (
                    "tls.key".to_owned(),
                    ByteString(cert.key_pem.clone().into_bytes()),
                ),
            ])
            .into_iter()
            .chain(cert.previous_ca_pem.as_ref().map(|pem| {
                (
                    PREVIOUS_CA_KEY.to_owned(),
                    ByteString(pem.clone().into_bytes()),
                )
            }))
            .collect(),
        ),
        ..Secret::default()
    }
}

impl ServingCert {
    /// What the apiserver must trust: the CA, and the one it replaced while replicas move
    /// over.
    #[must_use]
    pub fn ca_bundle(&self) -> String {
        match &self.previous_ca_pem {
            Some(previous) => format!("{}{previous}", self.ca_pem),
            None => self.ca_pem.clone(),
        }
    }
}

/// Sets `caBundle` of every webhook in ValidatingWebhookConfiguration `name` to `ca_pem`
/// (read-modify-write with the resourceVersion, retried on conflict).
///
/// # Errors
/// The configuration does not exist, or an API call failed.
pub async fn inject_ca_bundle(client: &Client, name: &str, ca_pem: &str) -> Result<(), CertError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    for _ in 0..5 {
        let mut config = api.get(name).await.map_err(|source| CertError::Api {
            action: format!("get ValidatingWebhookConfiguration {name}"),
            source,
        })?;
        let webhooks = config.webhooks.get_or_insert_default();
        if webhooks
            .iter()
            .all(|w| w.client_config.ca_bundle.as_ref() == Some(&bundle))
        {
            return Ok(());
        }
        for w in webhooks.iter_mut() {
            w.client_config.ca_bundle = Some(bundle.clone());
        }
        match api.replace(name, &PostParams::default(), &config).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => {
                return Err(CertError::Api {
                    action: format!("update ValidatingWebhookConfiguration {name}"),
                    source,
                });
            }
        }
    }
    Ok(())
}

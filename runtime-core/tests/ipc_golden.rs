//! Golden byte vectors of the pod-link format, committed under `tests/data/ipc/`. The Python
//! package's tests decode and re-encode the same files, so the two implementations cannot
//! drift apart silently. Regenerate after an intended format change with
//! `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-runtime-core --test ipc_golden`.

use std::path::PathBuf;

use remotemedia_runtime_core::data::{AudioBuffer, DType, RuntimeData, TensorData, TransportData};
use remotemedia_runtime_core::ipc::codec::{Ending, Envelope, Message, Refusal, decode, encode};
use remotemedia_runtime_core::manifest::{Position, Problem, ProblemKind};
use remotemedia_runtime_core::nodes::ParamIssue;
use serde_json::json;

fn vectors() -> Vec<(&'static str, Envelope)> {
    let e = |session, message| Envelope { session, message };
    vec![
        (
            "open",
            e(
                1,
                Message::Open {
                    manifest: String::new(),
                },
            ),
        ),
        (
            "input_audio",
            e(
                2,
                Message::Input(
                    TransportData::new(RuntimeData::Audio(
                        AudioBuffer::new(vec![0.0, 0.5, -0.5, 1.0], 48_000, 2)
                            .with_stream_id("mic")
                            .with_timestamp_us(20_000),
                    ))
                    .with_sequence(3)
                    .with_metadata("k", "v"),
                ),
            ),
        ),
        (
            "input_text",
            e(
                3,
                Message::Input(TransportData::new(RuntimeData::text("héllo"))),
            ),
        ),
        (
            "output_json",
            e(
                4,
                Message::Output {
                    node: "level".to_owned(),
                    item: TransportData::new(RuntimeData::Json(
                        json!({"rms_db": -20.5, "clipped": false}),
                    )),
                },
            ),
        ),
        (
            "output_binary",
            e(
                5,
                Message::Output {
                    node: "enc".to_owned(),
                    item: TransportData::new(RuntimeData::Binary(vec![0u8, 1, 254, 255].into())),
                },
            ),
        ),
        (
            "input_tensor",
            e(
                6,
                Message::Input(TransportData::new(RuntimeData::Tensor(TensorData {
                    bytes: [1i16, -2, 3, -4, 5, -6]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>()
                        .into(),
                    shape: vec![2, 3],
                    dtype: DType::I16,
                }))),
            ),
        ),
        ("end_input", e(7, Message::EndInput)),
        ("close", e(8, Message::Close)),
        ("credit", e(11, Message::Credit { count: 8 })),
        (
            "opened",
            e(
                9,
                Message::Opened {
                    manifest:
                        r#"{"version":"v1","nodes":[{"id":"pass","node_type":"PassThrough"}]}"#
                            .to_owned(),
                },
            ),
        ),
        (
            "error",
            e(
                10,
                Message::Error {
                    node: Some("gain".to_owned()),
                    sequence: Some(42),
                    message: "ValueError: boom".to_owned(),
                },
            ),
        ),
        (
            "error_session",
            e(
                10,
                Message::Error {
                    node: None,
                    sequence: None,
                    message: "undecodable input".to_owned(),
                },
            ),
        ),
        ("closed", e(u64::MAX, Message::Closed(Ending::Completed))),
        (
            "closed_aborted",
            e(
                12,
                Message::Closed(Ending::Aborted {
                    reason: "worker shutting down".to_owned(),
                }),
            ),
        ),
        (
            "closed_refused_manifest",
            e(
                13,
                Message::Closed(Ending::Refused(Refusal::InvalidManifest {
                    problems: vec![
                        Problem::error(
                            ProblemKind::InvalidParam,
                            "nodes[1].params.gain_db",
                            "param 'gain_db': \"loud\" is not of type \"number\"",
                        )
                        .on_node("gain")
                        .at(Some(Position {
                            line: 7,
                            column: 15,
                        })),
                        Problem::warning(
                            ProblemKind::IgnoredField,
                            "metadata.description",
                            "ignored",
                        ),
                    ],
                })),
            ),
        ),
        (
            "closed_refused_node_creation",
            e(
                14,
                Message::Closed(Ending::Refused(Refusal::NodeCreation {
                    node_id: "resample".to_owned(),
                    issues: vec![ParamIssue::invalid("target_rate", "must be at least 1")],
                })),
            ),
        ),
        (
            "closed_refused_node_start",
            e(
                15,
                Message::Closed(Ending::Refused(Refusal::NodeStart {
                    node_id: "python:Gain".to_owned(),
                    reason: "TypeError: bad param".to_owned(),
                })),
            ),
        ),
        (
            "closed_refused_other",
            e(
                16,
                Message::Closed(Ending::Refused(Refusal::Other {
                    reason: "client manifests are not allowed".to_owned(),
                })),
            ),
        ),
        ("done", e(0, Message::Done)),
        ("describe", e(17, Message::Describe)),
        (
            "catalog",
            e(
                17,
                Message::Catalog {
                    catalog: r#"{"version":1,"node_types":[]}"#.to_owned(),
                },
            ),
        ),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ipc")
}

#[test]
fn committed_vectors_match_the_encoder_and_decode_back() {
    let bless = std::env::var_os("REMOTEMEDIA_BLESS").is_some();
    for (name, envelope) in vectors() {
        let bytes = encode(&envelope).expect("encodes");
        let path = dir().join(format!("{name}.bin"));
        if bless {
            std::fs::write(&path, &bytes).expect("write vector");
        }
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless to create)", path.display()));
        assert!(
            committed == bytes,
            "{name}: the encoder's bytes differ from {}",
            path.display()
        );
        assert_eq!(decode(&committed).expect("decodes"), envelope, "{name}");
    }
    let files = std::fs::read_dir(dir()).expect("dir").count();
    assert_eq!(
        files,
        vectors().len(),
        "a vector file without a vector, or the reverse"
    );
}

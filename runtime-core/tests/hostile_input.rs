//! Property tests for what crosses a trust boundary into runtime-core: manifests (from users,
//! clients and the Python package) and pod-link messages (from another process's shared
//! memory). Whatever the input, the answer is a value or an error, never a panic; what is
//! accepted survives a round trip. The fuzz targets in fuzz/ push the same properties much
//! further (`make fuzz`); these run in `make test`.

use proptest::prelude::*;
use remotemedia_runtime_core::ipc::codec::{decode, encode};
use remotemedia_runtime_core::manifest::{Format, Manifest};
use remotemedia_runtime_core::nodes::NodeRegistry;

/// Text that looks like a manifest often enough to get past the first checks: node lists with
/// random ids, types, params and connections, in YAML flow style.
fn manifest_like() -> impl Strategy<Value = String> {
    let node_type = prop_oneof![
        Just("PassThrough".to_owned()),
        Just("AudioLevelNode".to_owned()),
        Just("AudioChunkerNode".to_owned()),
        Just("CalculatorNode".to_owned()),
        "[A-Za-z:]{0,12}",
    ];
    let param = prop_oneof![
        Just(String::new()),
        (-1_000_000i64..1_000_000).prop_map(|n| format!(", params: {{ chunk_size: {n} }}")),
        "[a-z_]{1,8}".prop_map(|k| format!(", params: {{ {k}: [1, {{a: b}}] }}")),
    ];
    let node = ("[a-z]{0,6}", node_type, param)
        .prop_map(|(id, t, p)| format!("{{ id: '{id}', node_type: '{t}'{p} }}"));
    let edge =
        ("[a-z]{0,6}", "[a-z]{0,6}").prop_map(|(a, b)| format!("{{ from: '{a}', to: '{b}' }}"));
    (
        prop::collection::vec(node, 0..5),
        prop::collection::vec(edge, 0..5),
        prop_oneof![Just("v1"), Just("v2"), Just("")],
    )
        .prop_map(|(nodes, edges, version)| {
            format!(
                "version: '{version}'\nnodes: [{}]\nconnections: [{}]\n",
                nodes.join(", "),
                edges.join(", ")
            )
        })
}

/// Nesting of YAML flow sequences and maps, `depth` deep: a stack-overflow attempt.
fn nested(depth: usize, maps: bool) -> String {
    let (open, close) = if maps { ("{a: ", "}") } else { ("[", "]") };
    format!("nodes: {}1{}\n", open.repeat(depth), close.repeat(depth))
}

fn accepted_round_trips(text: &str, format: Format) -> Result<(), TestCaseError> {
    let registry = NodeRegistry::with_builtins();
    if let Ok(manifest) = Manifest::from_text(text, format, &registry) {
        let json = serde_json::to_string(manifest.as_ref()).unwrap();
        let again = Manifest::from_text(&json, Format::Json, &registry);
        prop_assert!(again.is_ok(), "{json}: {:?}", again.err());
        prop_assert_eq!(manifest, again.unwrap());
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_text_is_a_manifest_or_a_report(text in ".{0,400}") {
        accepted_round_trips(&text, Format::Yaml)?;
        accepted_round_trips(&text, Format::Json)?;
    }

    #[test]
    fn manifest_like_text_is_a_manifest_or_a_report(text in manifest_like()) {
        accepted_round_trips(&text, Format::Yaml)?;
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash(depth in 1usize..5_000, maps in any::<bool>()) {
        let text = nested(depth, maps);
        let registry = NodeRegistry::with_builtins();
        let result = Manifest::from_text(&text, Format::Yaml, &registry);
        prop_assert!(result.is_err());
        if depth > 64 {
            let report = result.unwrap_err().to_string();
            prop_assert!(report.contains("nest"), "{}", report);
        }
    }

    #[test]
    fn any_bytes_are_a_pod_link_message_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(envelope) = decode(&bytes) {
            let again = decode(&encode(&envelope).unwrap()).unwrap();
            prop_assert_eq!(format!("{envelope:?}"), format!("{again:?}"));
        }
    }

    #[test]
    fn corrupted_messages_are_errors_or_still_round_trip(
        flip in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        // A real message, one byte changed, then cut short somewhere.
        let item = remotemedia_runtime_core::TransportData::new(
            remotemedia_runtime_core::RuntimeData::Text("hello".to_owned()),
        ).with_sequence(7);
        let envelope = remotemedia_runtime_core::ipc::codec::Envelope {
            session: 3,
            message: remotemedia_runtime_core::ipc::codec::Message::Input(item),
        };
        let mut bytes = encode(&envelope).unwrap();
        let at = flip.index(bytes.len());
        bytes[at] = value;
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(decoded) = decode(&bytes) {
            let again = decode(&encode(&decoded).unwrap()).unwrap();
            prop_assert_eq!(format!("{decoded:?}"), format!("{again:?}"));
        }
    }
}

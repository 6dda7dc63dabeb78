use serde_json::json;

use super::*;
use crate::manifest::{Problem, ProblemKind};
use crate::nodes::ParamIssue;

fn round_trip(message: Message) {
    let envelope = Envelope {
        session: 0xDEAD_BEEF_0000_0042,
        message,
    };
    let bytes = encode(&envelope).expect("encodes");
    assert_eq!(&bytes[..2], b"RM");
    assert_eq!(decode(&bytes), Ok(envelope));
}

fn items() -> Vec<TransportData> {
    let audio = AudioBuffer::new(
        vec![0.0, -1.0, 0.5, f32::MIN_POSITIVE, 1e-30, 0.25],
        48_000,
        2,
    )
    .with_stream_id("mic-1")
    .with_timestamp_us(1_234_567);
    vec![
        TransportData::new(RuntimeData::Audio(audio)),
        TransportData::new(RuntimeData::Audio(AudioBuffer::new(
            Vec::<f32>::new(),
            16_000,
            1,
        ))),
        TransportData::new(RuntimeData::text("héllo, wörld")).with_sequence(7),
        TransportData::new(RuntimeData::Json(
            json!({"a": [1, 2.5, null], "b": {"c": "d"}, "e": true}),
        ))
        .with_metadata("trace", "x")
        .with_metadata("empty", ""),
        TransportData::new(RuntimeData::Json(json!("a bare string stays JSON"))),
        TransportData::new(RuntimeData::Binary(vec![0u8, 255, 1, 2].into()))
            .with_sequence(u64::MAX),
        TransportData::new(RuntimeData::Tensor(TensorData {
            bytes: vec![0u8; 2 * 3 * 2].into(),
            shape: vec![2, 3],
            dtype: DType::I16,
        })),
    ]
}

#[test]
fn every_message_and_data_type_round_trips() {
    for item in items() {
        round_trip(Message::Input(item.clone()));
        round_trip(Message::Output {
            node: "level".to_owned(),
            item,
        });
    }
    round_trip(Message::Open {
        manifest: String::new(),
    });
    round_trip(Message::Open {
        manifest: "version: v1\nnodes: []".to_owned(),
    });
    round_trip(Message::EndInput);
    round_trip(Message::Close);
    round_trip(Message::Opened {
        manifest: r#"{"version":"v1","nodes":[]}"#.to_owned(),
    });
    round_trip(Message::Error {
        node: Some("gain".to_owned()),
        sequence: Some(3),
        message: "ValueError: bad".to_owned(),
    });
    round_trip(Message::Error {
        node: None,
        sequence: None,
        message: "undecodable input".to_owned(),
    });
    for ending in endings() {
        round_trip(Message::Closed(ending));
    }
}

/// One of each way a session ends, with every optional field both present and absent.
fn endings() -> Vec<Ending> {
    let problems = vec![
        Problem::error(
            ProblemKind::InvalidParam,
            "nodes[1].params.gain_db",
            "must be a number",
        )
        .on_node("gain")
        .at(Some(crate::manifest::Position {
            line: 7,
            column: 15,
        })),
        Problem::warning(ProblemKind::IgnoredField, "metadata.description", "ignored"),
    ];
    vec![
        Ending::Completed,
        Ending::Aborted {
            reason: "worker shutting down".to_owned(),
        },
        Ending::Refused(Refusal::InvalidManifest { problems }),
        Ending::Refused(Refusal::InvalidManifest {
            problems: Vec::new(),
        }),
        Ending::Refused(Refusal::NodeCreation {
            node_id: "resample".to_owned(),
            issues: vec![ParamIssue::invalid("target_rate", "must be at least 1")],
        }),
        Ending::Refused(Refusal::NodeStart {
            node_id: "vad".to_owned(),
            reason: "ImportError: no module named torch".to_owned(),
        }),
        Ending::Refused(Refusal::Other {
            reason: "client manifests are not allowed".to_owned(),
        }),
    ]
}

#[test]
fn every_ending_truncated_is_an_error_never_a_panic() {
    for ending in endings() {
        let bytes = encode(&Envelope {
            session: 3,
            message: Message::Closed(ending),
        })
        .expect("encodes");
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut]).expect_err("truncated input is refused");
            assert!(err.offset <= cut, "{err}");
        }
    }
}

#[test]
fn unknown_endings_refusals_and_problem_kinds_are_named() {
    let closed = |ending| {
        encode(&Envelope {
            session: 1,
            message: Message::Closed(ending),
        })
        .expect("encodes")
    };
    let mut bad = closed(Ending::Completed);
    bad[HEADER_LEN] = 9;
    assert_eq!(
        decode(&bad).expect_err("ending").to_string(),
        "ending at byte 16: unknown ending 9"
    );
    let mut bad = closed(Ending::Refused(Refusal::Other {
        reason: String::new(),
    }));
    bad[HEADER_LEN + 1] = 0;
    assert_eq!(decode(&bad).expect_err("refusal").field, "refusal");

    let issue = ParamIssue::invalid("x", "bad");
    let mut bad = closed(Ending::Refused(Refusal::NodeCreation {
        node_id: "n".to_owned(),
        issues: vec![issue],
    }));
    // ending, refusal, node (2 + 1), count 4, field (2 + 1), then the kind's length and name.
    let kind_at = HEADER_LEN + 2 + 3 + 4 + 3 + 2;
    assert_eq!(&bad[kind_at..kind_at + 7], b"invalid");
    bad[kind_at] = b'X';
    let err = decode(&bad).expect_err("kind");
    assert_eq!((err.field, err.offset), ("issue kind", kind_at - 2));
}

#[test]
fn an_absurd_problem_count_is_refused_without_allocating_it() {
    let mut bytes = encode(&Envelope {
        session: 1,
        message: Message::Closed(Ending::Refused(Refusal::InvalidManifest {
            problems: Vec::new(),
        })),
    })
    .expect("encodes");
    let count_at = HEADER_LEN + 2;
    bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&bytes).expect_err("count").field, "problem severity");
}

#[test]
fn nan_and_infinities_survive_bit_for_bit() {
    let samples = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
    let envelope = Envelope {
        session: 1,
        message: Message::Input(TransportData::new(RuntimeData::Audio(AudioBuffer::new(
            samples.clone(),
            8_000,
            1,
        )))),
    };
    let back = decode(&encode(&envelope).expect("encodes")).expect("decodes");
    let Message::Input(TransportData {
        data: RuntimeData::Audio(a),
        ..
    }) = back.message
    else {
        panic!("audio expected")
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.samples), bits(&samples));
}

#[test]
fn audio_samples_start_four_byte_aligned() {
    for id in ["", "a", "ab", "abc"] {
        let audio = AudioBuffer::new(vec![1.0f32; 3], 48_000, 1).with_stream_id(id);
        let bytes = encode(&Envelope {
            session: 3,
            message: Message::Output {
                node: "n".repeat(id.len() + 1),
                item: TransportData::new(RuntimeData::Audio(audio)),
            },
        })
        .expect("encodes");
        let samples_at = bytes.len() - 12;
        assert_eq!(samples_at % 4, 0, "stream id {id:?}");
        assert_eq!(&bytes[samples_at..samples_at + 4], &1.0f32.to_le_bytes());
    }
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for item in items() {
        let bytes = encode(&Envelope {
            session: 9,
            message: Message::Output {
                node: "x".to_owned(),
                item,
            },
        })
        .expect("encodes");
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut]).expect_err("truncated input is refused");
            assert!(err.offset <= cut, "{err}");
        }
    }
}

#[test]
fn bad_bytes_name_the_field_and_offset() {
    let good = encode(&Envelope {
        session: 1,
        message: Message::EndInput,
    })
    .expect("encodes");

    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad).expect_err("magic").field, "magic");

    let mut bad = good.clone();
    bad[2] = 9;
    let err = decode(&bad).expect_err("version");
    assert_eq!((err.field, err.offset), ("version", 2));

    let mut bad = good.clone();
    bad[3] = 99;
    assert_eq!(
        decode(&bad).expect_err("kind").to_string(),
        "kind at byte 3: unknown message kind 99"
    );

    let mut bad = good;
    bad.push(0);
    assert_eq!(decode(&bad).expect_err("trailing").field, "end");

    let mut text = encode(&Envelope {
        session: 1,
        message: Message::Input(TransportData::new(RuntimeData::text("ok"))),
    })
    .expect("encodes");
    let last = text.len() - 1;
    text[last] = 0xFF;
    assert_eq!(decode(&text).expect_err("utf8").field, "text");

    let json_item = encode(&Envelope {
        session: 1,
        message: Message::Input(TransportData::new(RuntimeData::Json(json!(12)))),
    })
    .expect("encodes");
    let mut broken = json_item;
    let last = broken.len() - 1;
    broken[last] = b'x';
    assert_eq!(decode(&broken).expect_err("json").field, "json");
}

#[test]
fn a_tensor_whose_bytes_do_not_match_its_shape_is_refused() {
    let mut bytes = encode(&Envelope {
        session: 1,
        message: Message::Input(TransportData::new(RuntimeData::Tensor(TensorData {
            bytes: vec![0u8; 8].into(),
            shape: vec![2],
            dtype: DType::F32,
        }))),
    })
    .expect("encodes");
    // Claim shape [3]: 12 bytes needed, 8 present.
    let shape_at = bytes.len() - 8 - 4 - 8;
    bytes[shape_at] = 3;
    let err = decode(&bytes).expect_err("mismatch");
    assert_eq!(err.field, "tensor bytes");
    assert!(err.problem.contains("needs 12 bytes"), "{err}");
}

#[test]
fn an_absurd_sample_count_is_refused_without_allocating_it() {
    let mut bytes = encode(&Envelope {
        session: 1,
        message: Message::Input(TransportData::new(RuntimeData::Audio(AudioBuffer::new(
            vec![0.5f32],
            48_000,
            1,
        )))),
    })
    .expect("encodes");
    // header 16, sequence flag 1, metadata count 4, tag 1, rate 4, channels 2, two flags 2
    let count_at = 30;
    assert_eq!(&bytes[count_at..count_at + 4], &1u32.to_le_bytes());
    bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&bytes).expect_err("count").field, "samples");
}

//! Every rejection of the manifest validator, each with its path, node id and line.

use remotemedia_runtime_core::manifest::{Format, Problem, ProblemKind, Severity, check_document};
use remotemedia_runtime_core::nodes::NodeRegistry;

fn problems(text: &str, format: Format) -> Vec<Problem> {
    check_document(text, format, &NodeRegistry::with_builtins())
        .report
        .problems
}

fn yaml(text: &str) -> Vec<Problem> {
    problems(text, Format::Yaml)
}

fn only(ps: &[Problem], kind: ProblemKind) -> &Problem {
    let matching: Vec<&Problem> = ps.iter().filter(|p| p.kind == kind).collect();
    assert_eq!(matching.len(), 1, "expected one {kind:?} in {ps:#?}");
    matching[0]
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let ps = problems(
        "{\n  \"version\": \"v1\",\n  \"nodes\": [\n    {\"id\": \"a\",}\n  ]\n}\n",
        Format::Json,
    );
    let p = only(&ps, ProblemKind::Syntax);
    assert_eq!((p.line, p.column.is_some()), (Some(4), true), "{p}");
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let ps = yaml("version: v1\nnodes:\n  - id: a\n    node_type: [PassThrough\n");
    let p = only(&ps, ProblemKind::Syntax);
    assert!(p.line.unwrap() >= 4, "{p}");
}

#[test]
fn unsupported_version() {
    let p = only(
        &yaml("version: v9\nnodes: [{id: a, node_type: PassThrough}]\n"),
        ProblemKind::UnsupportedVersion,
    )
    .clone();
    assert_eq!((p.path.as_str(), p.line), ("version", Some(1)));
    assert!(p.message.contains("v9"));
}

#[test]
fn no_nodes() {
    let p = only(&yaml("version: v1\nnodes: []\n"), ProblemKind::NoNodes).clone();
    assert_eq!(p.path, "nodes");
}

#[test]
fn duplicate_ids() {
    let ps = yaml(
        "version: v1\nnodes:\n  - {id: a, node_type: PassThrough}\n  - {id: a, node_type: PassThrough}\n",
    );
    let p = only(&ps, ProblemKind::DuplicateNodeId);
    assert_eq!(
        (p.path.as_str(), p.node_id.as_deref(), p.line),
        ("nodes[1].id", Some("a"), Some(4))
    );
}

#[test]
fn edges_to_unknown_nodes() {
    let ps = yaml(
        "version: v1\nnodes: [{id: a, node_type: PassThrough}]\nconnections:\n  - {from: a, to: ghost}\n",
    );
    let p = only(&ps, ProblemKind::UnknownEdgeEndpoint);
    assert_eq!((p.path.as_str(), p.line), ("connections[0].to", Some(4)));
    assert!(p.message.contains("ghost"));
}

#[test]
fn cycles_name_the_nodes_on_the_cycle() {
    let ps = yaml(
        "version: v1\nnodes:\n  - {id: src, node_type: PassThrough}\n  - {id: x, node_type: PassThrough}\n  \
         - {id: y, node_type: PassThrough}\n  - {id: z, node_type: PassThrough}\nconnections:\n  \
         - {from: src, to: x}\n  - {from: x, to: y}\n  - {from: y, to: z}\n  - {from: z, to: x}\n",
    );
    let p = only(&ps, ProblemKind::Cycle);
    assert!(p.message.contains("x -> y -> z -> x"), "{p}");
    assert_eq!(p.path, "connections[1]");
}

#[test]
fn self_loops() {
    let ps = yaml(
        "version: v1\nnodes: [{id: a, node_type: PassThrough}]\nconnections: [{from: a, to: a}]\n",
    );
    let p = only(&ps, ProblemKind::SelfLoop);
    assert_eq!(p.node_id.as_deref(), Some("a"));
    assert!(ps.iter().all(|p| p.kind != ProblemKind::Cycle));
}

#[test]
fn duplicate_edges() {
    let ps = yaml(
        "version: v1\nnodes: [{id: a, node_type: PassThrough}, {id: b, node_type: PassThrough}]\n\
         connections: [{from: a, to: b}, {from: a, to: b}]\n",
    );
    assert_eq!(only(&ps, ProblemKind::DuplicateEdge).path, "connections[1]");
}

#[test]
fn unknown_node_types_with_a_hint() {
    let ps = yaml(
        "version: v1\nnodes: [{id: r, node_type: FastResampleNod, params: {target_rate: 16000}}]\n",
    );
    let p = only(&ps, ProblemKind::UnknownNodeType);
    assert_eq!(
        (p.path.as_str(), p.node_id.as_deref()),
        ("nodes[0].node_type", Some("r"))
    );
    assert!(p.message.contains("did you mean 'FastResampleNode'"), "{p}");
}

#[test]
fn unknown_params() {
    // Upstream's own example passes `clipping_threshold` (no such field) and silently defaults.
    let ps = yaml(
        "version: v1\nnodes:\n  - id: clip\n    node_type: ClippingDetectorNode\n    params:\n      clipping_threshold: 0.01\n",
    );
    let p = only(&ps, ProblemKind::UnknownParam);
    assert_eq!(
        (p.path.as_str(), p.node_id.as_deref(), p.line),
        ("nodes[0].params.clipping_threshold", Some("clip"), Some(6))
    );
}

#[test]
fn params_of_the_wrong_type() {
    let ps = yaml(
        "version: v1\nnodes:\n  - id: r\n    node_type: FastResampleNode\n    params:\n      target_rate: sixteen\n      quality: Ultra\n",
    );
    let paths: Vec<&str> = ps
        .iter()
        .filter(|p| p.kind == ProblemKind::InvalidParam)
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["nodes[0].params.quality", "nodes[0].params.target_rate"]
    );
    assert!(ps.iter().all(|p| p.node_id.as_deref() == Some("r")));
}

#[test]
fn params_out_of_range_and_missing() {
    let ps = yaml(
        "version: v1\nnodes:\n  - {id: c, node_type: AudioChunkerNode, params: {chunk_size: 0}}\n  \
         - {id: r, node_type: FastResampleNode, params: {}}\n  \
         - {id: l, node_type: AudioLevelNode, params: {silence_threshold_db: -10, low_volume_threshold_db: -20}}\n",
    );
    let by_node = |id: &str| {
        ps.iter()
            .find(|p| p.node_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id}: {ps:#?}"))
    };
    assert!(
        by_node("c").message.contains("minimum of 1"),
        "{}",
        by_node("c")
    );
    assert_eq!(by_node("r").path, "nodes[1].params.target_rate");
    assert!(by_node("r").message.contains("missing required param"));
    assert!(by_node("l").message.contains("must be below"));
}

#[test]
fn structural_problems_unknown_fields_and_wrong_types() {
    let ps = yaml(
        "version: v1\nnodez: []\nnodes:\n  - {id: a, node_type: PassThrough, parms: {}, is_output_node: yes}\n",
    );
    let unknown: Vec<&str> = ps
        .iter()
        .filter(|p| p.kind == ProblemKind::UnknownField)
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(unknown, ["nodez", "nodes[0].parms"]);
    assert_eq!(
        only(&ps, ProblemKind::WrongType).path,
        "nodes[0].is_output_node"
    );
}

#[test]
fn upstream_fields_are_warnings_not_errors() {
    let ps = yaml(
        "version: v1\nmetadata: {name: x, category: demo}\nnodes:\n  - {id: a, node_type: PassThrough, is_streaming: true}\n",
    );
    assert!(
        ps.iter().all(|p| p.severity == Severity::Warning),
        "{ps:#?}"
    );
    assert_eq!(ps.len(), 2);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/pipelines/invalid/many-problems.yaml"
    ))
    .unwrap();
    let ps = yaml(&text);
    let mut kinds: Vec<ProblemKind> = ps.iter().map(|p| p.kind).collect();
    kinds.dedup();
    for expected in [
        ProblemKind::UnsupportedVersion,
        ProblemKind::UnknownParam,
        ProblemKind::InvalidParam,
        ProblemKind::DuplicateNodeId,
        ProblemKind::UnknownNodeType,
        ProblemKind::SelfLoop,
        ProblemKind::UnknownEdgeEndpoint,
        ProblemKind::Cycle,
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing from {ps:#?}"
        );
    }
    assert!(
        ps.iter().all(|p| p.line.is_some()),
        "every problem has a line: {ps:#?}"
    );
}

#[test]
fn pipeline_resource_paths_are_prefixed_with_spec_manifest() {
    let text = "apiVersion: remotemedia.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: res}\nspec:\n  manifest:\n    \
                version: v1\n    nodes:\n      - {id: c, node_type: AudioChunkerNode, params: {chunk_size: -1}}\n";
    let checked = check_document(text, Format::Yaml, &NodeRegistry::with_builtins());
    let p = &checked.report.problems[0];
    assert_eq!(
        (p.path.as_str(), p.line),
        ("spec.manifest.nodes[0].params.chunk_size", Some(8))
    );
    assert_eq!(checked.manifest.unwrap().name(), "res");

    let wrong = yaml("apiVersion: apps/v1\nkind: Deployment\nspec: {}\n");
    assert_eq!(only(&wrong, ProblemKind::NotAPipeline).path, "");
}

#[test]
fn camel_case_aliases_are_accepted_but_not_twice() {
    let ok = yaml(
        "version: v1\nnodes: [{id: r, node_type: FastResampleNode, params: {sourceRate: 48000, targetRate: 16000}}]\n",
    );
    assert!(ok.is_empty(), "{ok:#?}");
    let twice = yaml(
        "version: v1\nnodes: [{id: c, node_type: AudioChunkerNode, params: {chunkSize: 10, chunk_size: 20}}]\n",
    );
    assert!(
        only(&twice, ProblemKind::InvalidParam)
            .message
            .contains("given twice")
    );
}

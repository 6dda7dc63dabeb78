//! `nodes`: the registered node types, as text or as the JSON node catalog.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use remotemedia_runtime_core::nodes::NodeRegistry;

pub(crate) fn run(registry: &NodeRegistry, as_json: bool) -> ExitCode {
    if as_json {
        // The node catalog, versioned: docs/node-catalog.md describes the shape.
        let text = serde_json::to_string_pretty(&registry.catalog()).unwrap_or_default();
        return print(&format!("{text}\n"));
    }
    let mut text = String::new();
    for f in registry.factories() {
        let _ = writeln!(text, "{}  ({})", f.node_type(), f.io());
        let _ = writeln!(text, "    {}", f.description());
        let params = f.params();
        if params.is_empty() {
            text.push_str("    params: none\n");
        }
        for p in params {
            let default = match (&p.default, p.required) {
                (_, true) => "required".to_owned(),
                (Some(d), false) => format!("default {d}"),
                (None, false) => "optional".to_owned(),
            };
            let doc = p.description.map(|d| format!(" - {d}")).unwrap_or_default();
            let _ = writeln!(text, "    {}: {} ({default}){doc}", p.name, p.type_name);
        }
        text.push('\n');
    }
    print(&text)
}

/// Writes to stdout; a reader that went away (`| head`) is a normal end, not a crash.
fn print(text: &str) -> ExitCode {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

//! `validate`: one line per problem, `FILE:LINE:COL: severity: PATH (node 'id'): message`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use remotemedia_runtime_core::manifest::{Format, Severity, check_document};
use remotemedia_runtime_core::nodes::NodeRegistry;

pub(crate) fn run(files: &[impl AsRef<Path>], registry: &NodeRegistry) -> ExitCode {
    let mut invalid = 0;
    let mut lines = Vec::new();
    for file in files {
        let file = file.as_ref();
        let name = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                lines.push(format!("{name}: error: cannot read file: {e}"));
                invalid += 1;
                continue;
            }
        };
        let format = Format::detect(file.to_str(), &text);
        let report = check_document(&text, format, registry).report;
        for p in &report.problems {
            let location = match (p.line, p.column) {
                (Some(l), Some(c)) => format!("{name}:{l}:{c}"),
                _ => name.to_string(),
            };
            let severity = match p.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let node = p
                .node_id
                .as_ref()
                .map(|id| format!(" (node '{id}')"))
                .unwrap_or_default();
            let path = if p.path.is_empty() {
                "<document>"
            } else {
                &p.path
            };
            lines.push(format!(
                "{location}: {severity}: {path}{node}: {}",
                p.message
            ));
        }
        if report.has_errors() {
            invalid += 1;
        } else {
            eprintln!("{name}: valid");
        }
    }
    // A reader that went away (`| head`) is a normal end; the exit code still tells validity.
    let _ = std::io::stdout().lock().write_all(
        lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .as_bytes(),
    );
    if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

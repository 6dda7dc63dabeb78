//! Text to JSON value, keeping where each field came from.
//!
//! JSON is parsed strictly by `serde_json` (its syntax errors carry line and column). YAML is
//! parsed by `saphyr`, whose marked tree also gives the position of every node, so semantic
//! problems found later (`nodes[2].params.target_rate`) can name a line too. Valid JSON is also
//! valid YAML, so the same marked walk builds the position map for JSON files.

use std::collections::HashMap;
use std::fmt;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::Event;
use serde_json::{Map, Number, Value};

/// The syntax a manifest is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON (strict).
    Json,
    /// YAML 1.2.
    Yaml,
}

impl Format {
    /// Picks the format from a file extension (`.json` is JSON, anything else YAML), falling
    /// back to sniffing the text: a document starting with `{` or `[` is JSON.
    #[must_use]
    pub fn detect(path: Option<&str>, text: &str) -> Self {
        match path
            .and_then(|p| p.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase())
        {
            Some(ext) if ext == "json" => Self::Json,
            Some(ext) if ext == "yaml" || ext == "yml" => Self::Yaml,
            _ if text.trim_start().starts_with(['{', '[']) => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// A position in the source text (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Where each field path of a parsed document starts (`nodes[1].params.chunk_size` -> line 12).
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, Position>,
}

impl SourceMap {
    /// The position of `path`, or of its nearest ancestor that has one (a missing field is
    /// reported at the object that should have held it).
    #[must_use]
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A document that failed to parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{format:?} syntax error at {position}: {message}")]
pub struct SyntaxError {
    /// The syntax that was expected.
    pub format: Format,
    /// Where parsing stopped.
    pub position: Position,
    /// The parser's message.
    pub message: String,
}

/// The largest manifest text read: real ones are a few KiB; this bounds what one document
/// can make a process allocate.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// The deepest nesting of sequences and mappings read: real manifests nest about 6 deep (a
/// Pipeline resource's params); this keeps every recursive step over the tree far from the
/// stack's end (100,000 nested `- ` once overflowed it).
pub const MAX_MANIFEST_DEPTH: usize = 64;

/// Parses `text` as `format` into a JSON value and its source map.
///
/// # Errors
/// Returns a [`SyntaxError`] with line and column when the text is not well-formed, holds more
/// than one YAML document, uses YAML features with no JSON meaning (aliases, non-string keys),
/// is larger than [`MAX_MANIFEST_BYTES`] or nests deeper than [`MAX_MANIFEST_DEPTH`].
pub fn parse(text: &str, format: Format) -> Result<(Value, SourceMap), SyntaxError> {
    check_limits(text, format)?;
    match format {
        Format::Json => {
            let value: Value = serde_json::from_str(text).map_err(|e| SyntaxError {
                format,
                position: Position {
                    line: e.line(),
                    column: e.column(),
                },
                message: strip_serde_position(&e.to_string()),
            })?;
            // Positions are a convenience for JSON: a document serde_json accepts but the YAML
            // reader does not (rare escapes) simply gets no line numbers.
            let map = marked_document(text, format)
                .map(|(_, m)| m)
                .unwrap_or_default();
            Ok((value, map))
        }
        Format::Yaml => marked_document(text, format),
    }
}

/// Refuses a text over [`MAX_MANIFEST_BYTES`], or one nesting deeper than
/// [`MAX_MANIFEST_DEPTH`], before any tree is built. JSON is YAML, so one event scan covers
/// both; a syntax error stops the scan and is reported by the real parse.
fn check_limits(text: &str, format: Format) -> Result<(), SyntaxError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(SyntaxError {
            format,
            position: Position { line: 1, column: 1 },
            message: format!(
                "the manifest is {} bytes; at most {MAX_MANIFEST_BYTES} are read",
                text.len()
            ),
        });
    }
    let too_deep = |line: usize, col: usize| SyntaxError {
        format,
        position: Position {
            line,
            column: col + 1,
        },
        message: format!("nested deeper than {MAX_MANIFEST_DEPTH} levels of lists and maps"),
    };
    let mut depth = 0usize;
    for event in saphyr_parser::Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(ok) => ok,
            // The scanner's own bound on flow nesting (`[[[`), met while it reads ahead.
            Err(e) if e.info().contains("recursion limit") => {
                return Err(too_deep(e.marker().line(), e.marker().col()));
            }
            // Any other syntax error is reported, with its position, by the parse itself.
            Err(_) => break,
        };
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_MANIFEST_DEPTH {
                    return Err(too_deep(span.start.line(), span.start.col()));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn strip_serde_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn marked_document(text: &str, format: Format) -> Result<(Value, SourceMap), SyntaxError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError {
        format,
        position: Position {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: e.info().to_owned(),
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(SyntaxError {
            format,
            position: Position { line: 1, column: 1 },
            message: "the document is empty".into(),
        });
    };
    if let Some(extra) = docs.next() {
        return Err(SyntaxError {
            format,
            position: position_of(&extra),
            message: "a manifest file holds one YAML document; found a second".into(),
        });
    }
    let mut map = SourceMap::default();
    let value = to_json(&doc, String::new(), &mut map, format)?;
    Ok((value, map))
}

fn position_of(node: &MarkedYaml<'_>) -> Position {
    Position {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
    }
}

fn to_json(
    node: &MarkedYaml<'_>,
    path: String,
    map: &mut SourceMap,
    format: Format,
) -> Result<Value, SyntaxError> {
    let position = position_of(node);
    let unsupported = |what: &str| SyntaxError {
        format,
        position,
        message: what.to_owned(),
    };
    let value = match &node.data {
        YamlData::Value(scalar) => scalar_to_json(scalar),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(to_json(item, format!("{path}[{i}]"), map, format)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::new();
            for (key, item) in entries {
                let key = match &key.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(other) => scalar_to_json(other).to_string(),
                    _ => return Err(unsupported("mapping keys must be plain scalars")),
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if out.contains_key(&key) {
                    return Err(SyntaxError {
                        format,
                        position: position_of(item),
                        message: format!("duplicate key '{key}'"),
                    });
                }
                out.insert(key, to_json(item, child, map, format)?);
            }
            Value::Object(out)
        }
        YamlData::Tagged(_, inner) => return to_json(inner, path, map, format),
        YamlData::Alias(_) => return Err(unsupported("YAML aliases are not supported")),
        YamlData::BadValue => return Err(unsupported("a value does not match its tag")),
        YamlData::Representation(raw, _, _) => Value::String(raw.to_string()),
    };
    map.positions.insert(path, position);
    Ok(value)
}

fn scalar_to_json(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        // NaN and infinities have no JSON form; keep the text so the type check reports it.
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_nesting_is_an_error_naming_the_limit_not_a_crash() {
        for (text, format) in [
            (format!("{}x\n", "- ".repeat(100_000)), Format::Yaml),
            (
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
                Format::Yaml,
            ),
            (
                format!("{}1{}", "{\"a\":".repeat(3_000), "}".repeat(3_000)),
                Format::Json,
            ),
        ] {
            let err = parse(&text, format).expect_err("too deep");
            assert!(
                err.message.contains("nested deeper than 64"),
                "{format:?}: {err}"
            );
            assert_eq!(err.position.line, 1, "{err}");
        }
        // 64 levels are fine.
        let ok = format!("{}x\n", "- ".repeat(MAX_MANIFEST_DEPTH));
        assert!(parse(&ok, Format::Yaml).is_ok());
    }

    #[test]
    fn an_oversized_manifest_is_an_error_naming_the_limit() {
        let text = format!(
            "version: v1\nmetadata: {{description: \"{}\"}}\n",
            "x".repeat(MAX_MANIFEST_BYTES)
        );
        let err = parse(&text, Format::Yaml).expect_err("too big");
        assert!(
            err.message
                .contains(&format!("at most {MAX_MANIFEST_BYTES}")),
            "{err}"
        );
    }

    use super::*;

    #[test]
    fn yaml_positions_point_at_fields() {
        let text = "version: v1\nnodes:\n  - id: a\n    params:\n      chunk_size: 10\n";
        let (value, map) = parse(text, Format::Yaml).unwrap();
        assert_eq!(value["nodes"][0]["params"]["chunk_size"], 10);
        assert_eq!(map.locate("nodes[0].params.chunk_size").unwrap().line, 5);
        // A missing field is located at its nearest ancestor.
        assert_eq!(map.locate("nodes[0].node_type").unwrap().line, 3);
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let err = parse(
            "{\n  \"version\": \"v1\",\n  \"nodes\": [,]\n}",
            Format::Json,
        )
        .unwrap_err();
        assert_eq!(err.position.line, 3);
        assert!(err.position.column > 1);
    }

    #[test]
    fn yaml_syntax_error_has_line() {
        let err = parse("version: v1\nnodes: [a, b\n", Format::Yaml).unwrap_err();
        assert!(err.position.line >= 2, "{err}");
    }

    #[test]
    fn json_gets_positions_too() {
        let text = "{\n \"version\": \"v1\",\n \"nodes\": [\n  {\"id\": \"a\"}\n ]\n}";
        let (_, map) = parse(text, Format::Json).unwrap();
        assert_eq!(map.locate("nodes[0].id").unwrap().line, 4);
    }

    #[test]
    fn second_document_and_duplicate_keys_are_rejected() {
        assert!(
            parse("a: 1\n---\nb: 2\n", Format::Yaml)
                .unwrap_err()
                .message
                .contains("second")
        );
        let dup = parse("a: 1\na: 2\n", Format::Yaml).unwrap_err();
        assert_eq!(dup.position.line, 2);
    }

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect(Some("x.json"), "a: 1"), Format::Json);
        assert_eq!(Format::detect(Some("x.yml"), "{}"), Format::Yaml);
        assert_eq!(Format::detect(None, "  {\"a\": 1}"), Format::Json);
        assert_eq!(Format::detect(None, "a: 1"), Format::Yaml);
    }
}

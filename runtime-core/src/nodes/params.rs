//! Params: checking a params object against its JSON schema (every unknown key named, with
//! a "did you mean"; aliases resolved), and describing params for listings (type summaries,
//! defaults) from the same schema.

use serde_json::{Map, Value};

use super::{ParamInfo, ParamIssue};
use crate::manifest::ProblemKind;

/// A params schema compiled for checking: unknown keys are reported by name (with a "did you
/// mean"), the rest are validated against the schema, so each problem appears once.
pub(crate) struct ParamsSchema {
    schema: Value,
    validator: jsonschema::Validator,
    known_params: Vec<String>,
}

/// Why a params schema does not compile (boxed: the compiler's error is large).
pub type SchemaError = Box<jsonschema::ValidationError<'static>>;

impl ParamsSchema {
    /// Compiles `schema`.
    pub(crate) fn compile(schema: Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::validator_for(&schema).map_err(Box::new)?;
        let known_params = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        Ok(Self {
            schema,
            validator,
            known_params,
        })
    }

    pub(crate) fn schema(&self) -> &Value {
        &self.schema
    }

    /// Adds every problem with `params` (already an object, aliases resolved) to `issues`.
    /// Keys already named in `issues` are skipped.
    pub(crate) fn check(&self, params: &Value, node_type: &str, issues: &mut Vec<ParamIssue>) {
        let mut known = Map::new();
        for (key, value) in params.as_object().into_iter().flatten() {
            if issues.iter().any(|i| &i.field == key) {
                continue;
            }
            if self.known_params.contains(key) {
                known.insert(key.clone(), value.clone());
            } else {
                issues.push(unknown_param(key, &self.known_params, node_type));
            }
        }
        let known = Value::Object(known);
        issues.extend(self.validator.iter_errors(&known).map(|e| schema_issue(&e)));
    }
}

pub(crate) fn object_or_empty(params: &Value) -> Value {
    if params.is_null() {
        Value::Object(Map::new())
    } else {
        params.clone()
    }
}

/// Renames alias keys to their canonical names; an alias given next to its canonical name is
/// ambiguous and reported rather than silently choosing one.
pub(crate) fn canonical_names(
    params: Value,
    aliases: &[(&str, &str)],
    issues: &mut Vec<ParamIssue>,
) -> Value {
    let Value::Object(mut map) = params else {
        return params;
    };
    for (alias, canonical) in aliases {
        if let Some(v) = map.remove(*alias) {
            if map.contains_key(*canonical) {
                issues.push(ParamIssue::invalid(
                    *canonical,
                    format!("'{canonical}' is given twice (also as its alias '{alias}')"),
                ));
            } else {
                map.insert((*canonical).to_owned(), v);
            }
        }
    }
    Value::Object(map)
}

fn unknown_param(key: &str, known: &[String], node_type: &str) -> ParamIssue {
    let hint = closest(key, known.iter().map(String::as_str))
        .map(|k| format!("; did you mean '{k}'?"))
        .unwrap_or_default();
    let list = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    ParamIssue {
        field: key.to_owned(),
        kind: ProblemKind::UnknownParam,
        message: format!("unknown param '{key}' for {node_type} (known params: {list}){hint}"),
    }
}

fn schema_issue(e: &jsonschema::ValidationError<'_>) -> ParamIssue {
    if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
        let name = property.as_str().unwrap_or_default();
        return ParamIssue::invalid(name, format!("missing required param '{name}'"));
    }
    let field = pointer_to_path(e.instance_path().as_str());
    let name = if field.is_empty() {
        "params".to_owned()
    } else {
        format!("param '{field}'")
    };
    ParamIssue::invalid(field, format!("{name}: {e}"))
}

/// `/a/0/b` -> `a[0].b`
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The candidate nearest to `word` by edit distance, if it is plausibly a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.len() / 3).max(2);
    candidates
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn params_from_schema(schema: &Value) -> Vec<ParamInfo> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let defs = schema.get("$defs");
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| ParamInfo {
            name: name.clone(),
            type_name: type_summary(prop, defs),
            required: required.contains(&name.as_str()),
            default: prop.get("default").cloned(),
            description: prop
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect()
}

fn type_summary(prop: &Value, defs: Option<&Value>) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let target = r.rsplit('/').next().and_then(|name| defs?.get(name));
        return target.map_or_else(|| r.to_owned(), |t| type_summary(t, defs));
    }
    if let Some(options) = prop.get("enum").and_then(Value::as_array) {
        return options
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(options) = prop
        .get("oneOf")
        .or_else(|| prop.get("anyOf"))
        .and_then(Value::as_array)
    {
        return options
            .iter()
            .map(|o| type_summary(o, defs))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(c) = prop.get("const") {
        return c.to_string();
    }
    let mut summary = match prop.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    };
    let (min, max) = (prop.get("minimum"), prop.get("maximum"));
    match (min, max) {
        (Some(lo), Some(hi)) => summary.push_str(&format!(" [{lo}..{hi}]")),
        (Some(lo), None) if lo.as_f64() != Some(0.0) => summary.push_str(&format!(" >= {lo}")),
        (None, Some(hi)) => summary.push_str(&format!(" <= {hi}")),
        _ => {}
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_paths_read_like_field_paths() {
        assert_eq!(pointer_to_path("/a/0/b"), "a[0].b");
        assert_eq!(pointer_to_path(""), "");
    }

    #[test]
    fn typo_hints() {
        assert_eq!(
            closest("chunk_sise", ["chunk_size", "quality"].into_iter()),
            Some("chunk_size")
        );
        assert_eq!(closest("zzz", ["chunk_size"].into_iter()), None);
    }
}

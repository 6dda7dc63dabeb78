//! `TextCollectorNode`: joins streamed text tokens into sentences.

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Io, Node, NodeError, NodeKind, Outputs, ParamIssue};
use crate::data::{DataKind, RuntimeData};

/// Tokens that end the current utterance: whatever is buffered is emitted at once.
const FLUSH_TOKENS: &[&str] = &["<|text_end|>", "<|audio_end|>"];

/// Accumulates text and emits each complete sentence: text up to and including a match of
/// `split_pattern`, trimmed, at least `min_sentence_length` characters long (shorter pieces
/// are joined with what follows). `<|text_end|>` / `<|audio_end|>` flush the buffer, as does
/// the end of input when `yield_partial_on_end` is set, and so does text that grows past
/// `max_buffer_bytes` without a sentence end (emitted as it is: memory stays bounded and
/// nothing is lost). Other data kinds pass through.
#[derive(Debug)]
pub struct TextCollectorNode {
    split: Regex,
    min_len: usize,
    yield_partial_on_end: bool,
    max_buffer: usize,
    buffer: String,
}

/// Params of [`TextCollectorNode`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextCollectorParams {
    /// Regular expression matching a sentence end.
    #[serde(default = "default_split")]
    pub split_pattern: String,
    /// Shortest sentence (characters, after trimming) emitted on its own.
    #[serde(default = "default_min_len")]
    #[schemars(range(min = 0, max = 100_000))]
    pub min_sentence_length: u32,
    /// Emit the unfinished sentence when the input ends.
    #[serde(default = "default_true")]
    pub yield_partial_on_end: bool,
    /// Text held without a sentence end (bytes, UTF-8) before it is emitted as it is.
    #[serde(default = "default_max_buffer")]
    #[schemars(range(min = 1, max = 16_777_216))]
    pub max_buffer_bytes: u32,
}

fn default_split() -> String {
    r"[.!?;\n]".to_owned()
}
fn default_min_len() -> u32 {
    3
}
fn default_true() -> bool {
    true
}
fn default_max_buffer() -> u32 {
    65_536
}

impl NodeKind for TextCollectorNode {
    const NODE_TYPE: &'static str = "TextCollectorNode";
    const DESCRIPTION: &'static str =
        "Joins streamed text tokens into sentences; flushes on <|text_end|> and at end of input.";
    const IO: Io = Io {
        accepts: &[DataKind::Text],
        produces: &[DataKind::Text],
    };
    type Params = TextCollectorParams;
    const PARAM_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("splitPattern", "split_pattern"),
        ("minSentenceLength", "min_sentence_length"),
        ("yieldPartialOnEnd", "yield_partial_on_end"),
        ("maxBufferBytes", "max_buffer_bytes"),
    ];

    fn check(p: &TextCollectorParams) -> Vec<ParamIssue> {
        match Regex::new(&p.split_pattern) {
            Err(e) => vec![ParamIssue::invalid(
                "split_pattern",
                format!("not a valid regular expression: {e}"),
            )],
            Ok(r) if r.is_match("") => {
                vec![ParamIssue::invalid(
                    "split_pattern",
                    "pattern matches the empty string, so every position would end a sentence",
                )]
            }
            Ok(_) => Vec::new(),
        }
    }

    fn new(p: TextCollectorParams) -> Self {
        Self {
            split: Regex::new(&p.split_pattern).expect("checked by NodeKind::check"),
            min_len: p.min_sentence_length as usize,
            yield_partial_on_end: p.yield_partial_on_end,
            max_buffer: p.max_buffer_bytes as usize,
            buffer: String::new(),
        }
    }
}

impl TextCollectorNode {
    fn emit_sentences(&mut self, out: &mut Outputs) {
        let mut start = 0;
        let mut search_from = 0;
        while let Some(m) = self.split.find_at(&self.buffer, search_from) {
            search_from = m.end();
            let sentence = self.buffer[start..m.end()].trim();
            if sentence.chars().count() >= self.min_len {
                out.push(RuntimeData::text(sentence));
                start = m.end();
            }
        }
        self.buffer.drain(..start);
        if self.buffer.len() > self.max_buffer {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut Outputs) {
        let rest = self.buffer.trim();
        if !rest.is_empty() {
            out.push(RuntimeData::text(rest));
        }
        self.buffer.clear();
    }
}

impl Node for TextCollectorNode {
    fn process(&mut self, input: RuntimeData, out: &mut Outputs) -> Result<(), NodeError> {
        let RuntimeData::Text(text) = input else {
            out.push(input);
            return Ok(());
        };
        let mut rest = text.as_str();
        // Text may carry a flush token in the middle: collect up to it, flush, continue.
        while let Some((pos, token)) = FLUSH_TOKENS
            .iter()
            .filter_map(|t| rest.find(t).map(|p| (p, *t)))
            .min()
        {
            self.buffer.push_str(&rest[..pos]);
            self.emit_sentences(out);
            self.flush(out);
            rest = &rest[pos + token.len()..];
        }
        self.buffer.push_str(rest);
        self.emit_sentences(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Outputs) -> Result<(), NodeError> {
        if self.yield_partial_on_end {
            self.flush(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector() -> TextCollectorNode {
        TextCollectorNode::new(TextCollectorParams {
            split_pattern: default_split(),
            min_sentence_length: 3,
            yield_partial_on_end: true,
            max_buffer_bytes: default_max_buffer(),
        })
    }

    fn texts(out: &mut Outputs) -> Vec<String> {
        out.drain()
            .map(|d| match d {
                RuntimeData::Text(t) => t,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn text_without_a_sentence_end_is_emitted_at_the_cap_not_held_for_ever() {
        let mut node = TextCollectorNode::new(TextCollectorParams {
            max_buffer_bytes: 100,
            ..serde_json::from_value(serde_json::json!({})).unwrap()
        });
        let mut out = Outputs::default();
        let mut sent = String::new();
        for i in 0..1_000 {
            let token = format!("wörd{i} ");
            sent.push_str(&token);
            node.process(RuntimeData::text(token), &mut out).unwrap();
            assert!(
                node.buffer.len() <= 100 + 16,
                "{} bytes held",
                node.buffer.len()
            );
        }
        node.finish(&mut out).unwrap();
        let emitted = texts(&mut out);
        assert!(emitted.len() > 50, "{} pieces", emitted.len());
        // Nothing lost: the pieces are the input, in order (pieces are trimmed).
        let joined: String = emitted.join(" ");
        assert_eq!(
            joined.split_whitespace().collect::<Vec<_>>(),
            sent.split_whitespace().collect::<Vec<_>>()
        );
    }

    #[test]
    fn tokens_become_sentences() {
        let mut node = collector();
        let mut out = Outputs::default();
        for token in ["Hel", "lo there", ". How", " are you? I am", " fine"] {
            node.process(RuntimeData::text(token), &mut out).unwrap();
        }
        assert_eq!(texts(&mut out), ["Hello there.", "How are you?"]);
        node.finish(&mut out).unwrap();
        assert_eq!(texts(&mut out), ["I am fine"]);
    }

    #[test]
    fn short_pieces_join_the_next_sentence_and_flush_tokens_flush() {
        let mut node = collector();
        let mut out = Outputs::default();
        node.process(RuntimeData::text("A. Then more<|text_end|>Next"), &mut out)
            .unwrap();
        assert_eq!(texts(&mut out), ["A. Then more"]);
        node.process(RuntimeData::text("!"), &mut out).unwrap();
        assert_eq!(texts(&mut out), ["Next!"]);
    }

    #[test]
    fn letters_n_r_t_are_not_boundaries() {
        // Upstream stripped n/r/t from its pattern; here the regex is used as written.
        let mut node = collector();
        let mut out = Outputs::default();
        node.process(RuntimeData::text("internet return.\n"), &mut out)
            .unwrap();
        assert_eq!(texts(&mut out), ["internet return."]);
    }

    #[test]
    fn invalid_pattern_is_a_param_error() {
        let bad = TextCollectorParams {
            split_pattern: "[".into(),
            min_sentence_length: 1,
            yield_partial_on_end: true,
            max_buffer_bytes: 1,
        };
        assert_eq!(TextCollectorNode::check(&bad)[0].field, "split_pattern");
        let empty = TextCollectorParams {
            split_pattern: "x*".into(),
            ..bad
        };
        assert!(
            TextCollectorNode::check(&empty)[0]
                .message
                .contains("empty")
        );
    }
}

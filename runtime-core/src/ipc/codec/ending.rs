//! The body of `Closed`: how a session ended, typed, so neither end matches on text.
//!
//! ```text
//! ending   u8, then by value:
//!   1 Completed   -                  (every output delivered after the end of input)
//!   2 Aborted     reason: str32      (stopped early: worker shutting down, client gone, ...)
//!   3 Refused     refusal            (never opened: the answer to Open)
//! refusal  u8, then by value:
//!   1 InvalidManifest  count u32, problem*
//!   2 NodeCreation     node: str16, count u32, (field: str16, kind: str16, message: str32)*
//!   3 NodeStart        node: str16, reason: str32
//!   4 Other            reason: str32
//! problem  severity u8 (1 error, 2 warning) | kind: str16 | path: str16 |
//!          node: u8 present + str16 | line: u8 present + u64 | column: u8 present + u64 |
//!          message: str32
//! ```
//!
//! Problem and param-issue kinds travel as their snake_case names (`invalid_param`), the
//! names `remotemedia-runtime validate --json` prints too.

use super::{DecodeError, EncodeError, Reader, Writer};
use crate::manifest::{Problem, ProblemKind, Severity};
use crate::nodes::ParamIssue;

/// How a session ended: what `Closed` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every output was delivered after the end of input.
    Completed,
    /// The session stopped before its end (the worker shut down, the client's pipes went
    /// away, the pipeline failed as a whole, flow control was broken).
    Aborted {
        /// What happened, for people.
        reason: String,
    },
    /// The session never opened: the answer to `Open` instead of `Opened`.
    Refused(Refusal),
}

/// Why a worker (or a node process) did not open a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client's manifest does not validate against the worker's node types.
    InvalidManifest {
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// A node's params were refused when it was built.
    NodeCreation {
        /// The node.
        node_id: String,
        /// What was wrong with its params.
        issues: Vec<ParamIssue>,
    },
    /// A node could not start (its process could not be spawned, or failed to start).
    NodeStart {
        /// The node.
        node_id: String,
        /// Why.
        reason: String,
    },
    /// Anything else (client manifests not allowed, ...).
    Other {
        /// Why.
        reason: String,
    },
}

impl Writer {
    pub(super) fn ending(&mut self, ending: &Ending) -> Result<(), EncodeError> {
        match ending {
            Ending::Completed => self.buf.push(1),
            Ending::Aborted { reason } => {
                self.buf.push(2);
                self.str32("reason", reason)?;
            }
            Ending::Refused(refusal) => {
                self.buf.push(3);
                self.refusal(refusal)?;
            }
        }
        Ok(())
    }

    fn refusal(&mut self, refusal: &Refusal) -> Result<(), EncodeError> {
        match refusal {
            Refusal::InvalidManifest { problems } => {
                self.buf.push(1);
                self.count("problems", problems.len())?;
                for problem in problems {
                    self.problem(problem)?;
                }
            }
            Refusal::NodeCreation { node_id, issues } => {
                self.buf.push(2);
                self.str16("node", node_id)?;
                self.count("issues", issues.len())?;
                for issue in issues {
                    self.str16("issue field", &issue.field)?;
                    self.str16("issue kind", &kind_name(issue.kind))?;
                    self.str32("issue message", &issue.message)?;
                }
            }
            Refusal::NodeStart { node_id, reason } => {
                self.buf.push(3);
                self.str16("node", node_id)?;
                self.str32("reason", reason)?;
            }
            Refusal::Other { reason } => {
                self.buf.push(4);
                self.str32("reason", reason)?;
            }
        }
        Ok(())
    }

    fn problem(&mut self, problem: &Problem) -> Result<(), EncodeError> {
        self.buf.push(match problem.severity {
            Severity::Error => 1,
            Severity::Warning => 2,
        });
        self.str16("problem kind", &kind_name(problem.kind))?;
        self.str16("problem path", &problem.path)?;
        self.opt_str16("problem node", problem.node_id.as_deref())?;
        self.opt_u64(problem.line.map(|l| l as u64));
        self.opt_u64(problem.column.map(|c| c as u64));
        self.str32("problem message", &problem.message)
    }

    fn count(&mut self, field: &'static str, len: usize) -> Result<(), EncodeError> {
        let count = Self::len_u32(field, len)?;
        self.buf.extend_from_slice(&count.to_le_bytes());
        Ok(())
    }
}

impl Reader<'_> {
    pub(super) fn ending(&mut self) -> Result<Ending, DecodeError> {
        let at = self.pos;
        Ok(match self.u8("ending")? {
            1 => Ending::Completed,
            2 => Ending::Aborted {
                reason: self.str32("reason")?,
            },
            3 => Ending::Refused(self.refusal()?),
            other => return Err(self.error_at(at, "ending", format!("unknown ending {other}"))),
        })
    }

    fn refusal(&mut self) -> Result<Refusal, DecodeError> {
        let at = self.pos;
        Ok(match self.u8("refusal")? {
            1 => {
                let count = self.u32("problems")?;
                // Each problem takes at least 17 bytes: a count beyond what is left is a lie,
                // and must not reserve memory.
                let mut problems = Vec::with_capacity(self.bounded(count, 17));
                for _ in 0..count {
                    problems.push(self.problem()?);
                }
                Refusal::InvalidManifest { problems }
            }
            2 => {
                let node_id = self.str16("node")?;
                let count = self.u32("issues")?;
                let mut issues = Vec::with_capacity(self.bounded(count, 8));
                for _ in 0..count {
                    let field = self.str16("issue field")?;
                    let kind = self.kind("issue kind")?;
                    let message = self.str32("issue message")?;
                    issues.push(ParamIssue {
                        field,
                        kind,
                        message,
                    });
                }
                Refusal::NodeCreation { node_id, issues }
            }
            3 => Refusal::NodeStart {
                node_id: self.str16("node")?,
                reason: self.str32("reason")?,
            },
            4 => Refusal::Other {
                reason: self.str32("reason")?,
            },
            other => return Err(self.error_at(at, "refusal", format!("unknown refusal {other}"))),
        })
    }

    fn problem(&mut self) -> Result<Problem, DecodeError> {
        let at = self.pos;
        let severity = match self.u8("problem severity")? {
            1 => Severity::Error,
            2 => Severity::Warning,
            other => {
                return Err(self.error_at(
                    at,
                    "problem severity",
                    format!("unknown severity {other}"),
                ));
            }
        };
        let kind = self.kind("problem kind")?;
        let path = self.str16("problem path")?;
        let node_id = if self.flag("problem node")? {
            Some(self.str16("problem node")?)
        } else {
            None
        };
        let line = self.opt_usize("problem line")?;
        let column = self.opt_usize("problem column")?;
        Ok(Problem {
            severity,
            kind,
            path,
            node_id,
            line,
            column,
            message: self.str32("problem message")?,
        })
    }

    fn kind(&mut self, field: &'static str) -> Result<ProblemKind, DecodeError> {
        let at = self.pos;
        let name = self.str16(field)?;
        serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| self.error_at(at, field, format!("unknown problem kind {name:?}")))
    }

    fn opt_usize(&mut self, field: &'static str) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        self.opt_u64(field)?
            .map(|v| {
                usize::try_from(v).map_err(|_| self.error_at(at, field, format!("{v} too large")))
            })
            .transpose()
    }

    /// A capacity for `count` records of at least `min_len` bytes each: never more than the
    /// bytes left could hold.
    fn bounded(&self, count: u32, min_len: usize) -> usize {
        (count as usize).min((self.bytes.len() - self.pos) / min_len)
    }
}

/// The snake_case name of a problem kind, as serde writes it (and `validate --json` prints).
fn kind_name(kind: ProblemKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        // A unit variant always serializes to its name; nothing else can come back.
        other => format!("{other:?}"),
    }
}

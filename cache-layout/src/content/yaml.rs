//! Bundled YAML (`.xl`, tweaks) read into a small tree with hard limits:
//! file size, nesting depth, node count with aliases expanded, alias count.
//!
//! Parsing is event-driven (saphyr-parser) with an explicit stack, so deep
//! nesting is refused at the first event past the limit and an alias bomb
//! stops once its expansion passes `MAX_YAML_NODES`, before it is built.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use shard_protocol::limits::{MAX_YAML_ALIASES, MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES};

/// Why a YAML file was refused, with the 1-based line where it was noticed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// The file is larger than `MAX_YAML_BYTES`.
    #[error("file is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// File size.
        size: usize,
        /// Cap.
        limit: usize,
    },
    /// The file is not UTF-8.
    #[error("file is not UTF-8")]
    NotUtf8,
    /// The YAML does not parse.
    #[error("line {line}: {message}")]
    Syntax {
        /// Line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// Mappings and sequences nest deeper than `MAX_YAML_DEPTH`.
    #[error("line {line}: nesting deeper than {limit}")]
    TooDeep {
        /// Line.
        line: usize,
        /// Cap.
        limit: usize,
    },
    /// More than `MAX_YAML_NODES` nodes once aliases are expanded.
    #[error("line {line}: more than {limit} nodes once aliases are expanded (alias bomb?)")]
    TooManyNodes {
        /// Line.
        line: usize,
        /// Cap.
        limit: usize,
    },
    /// More than `MAX_YAML_ALIASES` aliases.
    #[error("line {line}: more than {limit} aliases")]
    TooManyAliases {
        /// Line.
        line: usize,
        /// Cap.
        limit: usize,
    },
    /// An alias names no anchor defined before it.
    #[error("line {line}: alias to an unknown anchor")]
    UnknownAlias {
        /// Line.
        line: usize,
    },
    /// The file holds more than one document.
    #[error("line {line}: only one YAML document per file")]
    MultipleDocuments {
        /// Line.
        line: usize,
    },
}

impl YamlError {
    /// The line the problem was found on (0 when it concerns the whole file).
    pub fn line(&self) -> usize {
        match self {
            YamlError::TooLarge { .. } | YamlError::NotUtf8 => 0,
            YamlError::Syntax { line, .. }
            | YamlError::TooDeep { line, .. }
            | YamlError::TooManyNodes { line, .. }
            | YamlError::TooManyAliases { line, .. }
            | YamlError::UnknownAlias { line }
            | YamlError::MultipleDocuments { line } => *line,
        }
    }

    /// The rule id diagnostics show for this error.
    pub fn rule(&self) -> &'static str {
        match self {
            YamlError::TooLarge { .. } => "yaml-size",
            YamlError::NotUtf8 | YamlError::Syntax { .. } | YamlError::MultipleDocuments { .. } => {
                "yaml-syntax"
            }
            YamlError::TooDeep { .. } => "yaml-depth",
            YamlError::TooManyNodes { .. } | YamlError::TooManyAliases { .. } => "yaml-alias",
            YamlError::UnknownAlias { .. } => "yaml-syntax",
        }
    }
}

/// One YAML node with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line.
    pub line: usize,
    /// The node's tag as written (`!append`), if any.
    pub tag: Option<String>,
    /// What it is.
    pub kind: Kind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar; `plain` is false for quoted and block scalars (so `"~"` is text, not null).
    Scalar {
        /// Its text.
        text: String,
        /// Written without quotes.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (duplicates kept so checks can report them).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is a plain null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// Nodes in this subtree (itself included).
    fn count(&self) -> usize {
        1 + match &self.kind {
            Kind::Scalar { .. } => 0,
            Kind::Seq(items) => items.iter().map(Node::count).sum(),
            Kind::Map(pairs) => pairs.iter().map(|(k, v)| k.count() + v.count()).sum(),
        }
    }
}

/// A collection being built.
enum Frame {
    Seq(Node, usize, Vec<Node>),
    Map(Node, usize, Vec<(Node, Node)>, Option<Node>),
}

fn tag_text(tag: Option<std::borrow::Cow<'_, Tag>>) -> Option<String> {
    tag.map(|t| {
        if t.handle == "!" {
            format!("!{}", t.suffix)
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

/// Parses `bytes` as one YAML document under every limit; `None` for an empty file.
pub fn parse(bytes: &[u8]) -> Result<Option<Node>, YamlError> {
    if bytes.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge {
            size: bytes.len(),
            limit: MAX_YAML_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| YamlError::NotUtf8)?;
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    let mut aliases = 0usize;
    let mut documents = 0usize;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| YamlError::Syntax {
            line: e.marker().line(),
            message: e.info().to_owned(),
        })?;
        let line = span.start.line();
        let node_limit = |n: usize| {
            if n > MAX_YAML_NODES {
                Err(YamlError::TooManyNodes {
                    line,
                    limit: MAX_YAML_NODES,
                })
            } else {
                Ok(())
            }
        };
        let done: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError::MultipleDocuments { line });
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                nodes += 1;
                node_limit(nodes)?;
                let node = Node {
                    line,
                    tag: tag_text(tag),
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                Some((node, anchor))
            }
            Event::Alias(id) => {
                aliases += 1;
                if aliases > MAX_YAML_ALIASES {
                    return Err(YamlError::TooManyAliases {
                        line,
                        limit: MAX_YAML_ALIASES,
                    });
                }
                let Some(target) = anchors.get(&id) else {
                    return Err(YamlError::UnknownAlias { line });
                };
                nodes = nodes.saturating_add(target.count());
                node_limit(nodes)?;
                Some((target.clone(), 0))
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_YAML_DEPTH => {
                return Err(YamlError::TooDeep {
                    line,
                    limit: MAX_YAML_DEPTH,
                });
            }
            Event::SequenceStart(anchor, tag) => {
                nodes += 1;
                node_limit(nodes)?;
                let head = Node {
                    line,
                    tag: tag_text(tag),
                    kind: Kind::Seq(Vec::new()),
                };
                stack.push(Frame::Seq(head, anchor, Vec::new()));
                None
            }
            Event::MappingStart(anchor, tag) => {
                nodes += 1;
                node_limit(nodes)?;
                let head = Node {
                    line,
                    tag: tag_text(tag),
                    kind: Kind::Map(Vec::new()),
                };
                stack.push(Frame::Map(head, anchor, Vec::new(), None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(mut head, anchor, items)) => {
                    head.kind = Kind::Seq(items);
                    Some((head, anchor))
                }
                Some(Frame::Map(mut head, anchor, pairs, _)) => {
                    head.kind = Kind::Map(pairs);
                    Some((head, anchor))
                }
                None => None,
            },
        };
        let Some((node, anchor)) = done else { continue };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, pairs, key)) => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => *key = Some(node),
            },
            None => root = Some(node),
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_expand_tags_and_lines_are_kept_and_quoted_nulls_are_text() {
        let root = parse(b"a: &x [1, 2]\nb: *x\nc: !append [3]\nd: \"~\"\ne: ~\n")
            .unwrap()
            .unwrap();
        let Kind::Map(pairs) = &root.kind else {
            panic!("{root:?}")
        };
        assert_eq!(pairs[1].1.kind, pairs[0].1.kind);
        assert_eq!(pairs[1].0.line, 2);
        assert_eq!(pairs[2].1.tag.as_deref(), Some("!append"));
        assert!(!pairs[3].1.is_null());
        assert!(pairs[4].1.is_null());
        assert_eq!(parse(b"").unwrap(), None);
    }

    #[test]
    fn limits_are_enforced_with_the_line() {
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_YAML_DEPTH + 1),
            "]".repeat(MAX_YAML_DEPTH + 1)
        );
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(YamlError::TooDeep { line: 1, .. })
        ));
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_YAML_DEPTH),
            "]".repeat(MAX_YAML_DEPTH)
        );
        assert!(parse(ok.as_bytes()).is_ok());
        assert!(matches!(
            parse(b"a: *nowhere\n"),
            Err(YamlError::UnknownAlias { .. }) | Err(YamlError::Syntax { .. })
        ));
        assert_eq!(parse(&[0xff, 0xfe]), Err(YamlError::NotUtf8));
    }
}

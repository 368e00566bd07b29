//! YAML read with a bound on alias expansion: a 400-byte "billion laughs" document (anchors
//! aliased inside anchors) would otherwise expand into gigabytes when loaded. The event stream
//! is read first, counting the nodes every alias stands for; past [`MAX_NODES`] the document is
//! refused with the line of the alias that crossed it.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

/// Nodes a document may expand to, aliases counted as what they stand for.
pub const MAX_NODES: u64 = 2_000_000;

/// Why a document was refused: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

#[derive(Default)]
struct Budget {
    sizes: HashMap<usize, u64>,
    open: Vec<(usize, u64)>,
    total: u64,
    over: Option<usize>,
}

impl MarkedEventReceiver for Budget {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.over.is_some() {
            return;
        }
        match ev {
            Event::Scalar(_, _, anchor, _) => {
                self.total += 1;
                if anchor > 0 {
                    self.sizes.insert(anchor, 1);
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => self.open.push((anchor, self.total)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = self.open.pop() {
                    self.total += 1;
                    if anchor > 0 {
                        self.sizes.insert(anchor, self.total - start);
                    }
                }
            }
            Event::Alias(id) => self.total = self.total.saturating_add(self.sizes.get(&id).copied().unwrap_or(1)),
            _ => {}
        }
        if self.total > MAX_NODES {
            self.over = Some(mark.line());
        }
    }
}

/// Every document in `text`, or why not.
pub fn load(text: &str) -> Result<Vec<Yaml>, YamlError> {
    let mut budget = Budget::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut budget, true).map_err(|e| YamlError { line: e.marker().line(), message: e.to_string() })?;
    if let Some(line) = budget.over {
        return Err(YamlError {
            line,
            message: format!("aliases expand this document past {MAX_NODES} nodes (an alias bomb?)"),
        });
    }
    YamlLoader::load_from_str(text).map_err(|e| YamlError { line: e.marker().line(), message: e.to_string() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn an_alias_bomb_is_refused_with_its_line() {
        let mut doc = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
            let prev = (b'a' + i as u8) as char;
            doc.push_str(&format!(
                "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        assert!(doc.len() < 500);
        let e = super::load(&doc).unwrap_err();
        assert!(e.message.contains("alias"), "{e:?}");
        assert!(e.line >= 6, "{e:?}");
        // Ordinary aliases are fine.
        let ok = super::load("base: &b {x: 1}\nother: *b\n").unwrap();
        assert_eq!(ok[0]["other"]["x"].as_i64(), Some(1));
    }
}

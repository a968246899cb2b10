//! `.json`: a JSON array whose elements are the records, or one document (an object), read by
//! a scanner that follows strings, escapes and nesting but does not parse values: each element
//! is sent as it is written and the gateway checks it is JSON. Only the array's own structure
//! (brackets, commas, the end of the file) is checked here; a break in it refuses the file.

use std::io::BufRead;

use super::{Cursor, Limits, ReadError, Record, text, too_large};

/// Deeper nesting refuses the file (serde_json's own limit is 128 too).
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte.
    Start,
    /// Inside the array, before its first element or its `]`.
    First,
    /// After an element: a `,` or the `]` comes next.
    AfterElement,
    /// The file is one document, not yet read.
    Single,
    /// Nothing more to read, or an error was returned.
    Done,
}

pub struct Documents<R> {
    cursor: Cursor<R>,
    limits: Limits,
    state: State,
    number: u64,
}

impl<R: BufRead> Documents<R> {
    pub fn new(reader: R, limits: Limits) -> Self {
        Self {
            cursor: Cursor::new(reader),
            limits,
            state: State::Start,
            number: 0,
        }
    }

    fn step(&mut self) -> Result<Option<Record>, ReadError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => {
                    self.cursor.skip_bom()?;
                    match self.cursor.skip_whitespace()? {
                        None => self.state = State::Done,
                        Some(b'[') => {
                            self.cursor.bump(b'[');
                            self.state = State::First;
                        }
                        Some(b'{') => self.state = State::Single,
                        Some(_) => {
                            return Err(ReadError::malformed(
                                self.cursor.line,
                                "a .json file holds a JSON array of documents or one document (an object)",
                            ));
                        }
                    }
                }
                State::Single => {
                    let record = self.element()?;
                    if self.cursor.skip_whitespace()?.is_some() {
                        return Err(ReadError::malformed(
                            self.cursor.line,
                            "more data after the document (a file of several documents is an array, or NDJSON)",
                        ));
                    }
                    self.state = State::Done;
                    return Ok(Some(record));
                }
                State::First => match self.cursor.skip_whitespace()? {
                    Some(b']') => {
                        self.cursor.bump(b']');
                        return self.end();
                    }
                    Some(_) => return self.next_element(),
                    None => return Err(self.unterminated()),
                },
                State::AfterElement => match self.cursor.skip_whitespace()? {
                    Some(b',') => {
                        self.cursor.bump(b',');
                        match self.cursor.skip_whitespace()? {
                            Some(b']') => {
                                return Err(ReadError::malformed(
                                    self.cursor.line,
                                    "a comma before the array's closing bracket",
                                ));
                            }
                            Some(_) => return self.next_element(),
                            None => return Err(self.unterminated()),
                        }
                    }
                    Some(b']') => {
                        self.cursor.bump(b']');
                        return self.end();
                    }
                    Some(other) => {
                        return Err(ReadError::malformed(
                            self.cursor.line,
                            format!(
                                "expected a comma or the array's closing bracket after record {}, found {:?}",
                                self.number,
                                char::from(other)
                            ),
                        ));
                    }
                    None => return Err(self.unterminated()),
                },
            }
        }
    }

    fn next_element(&mut self) -> Result<Option<Record>, ReadError> {
        let record = self.element()?;
        self.state = State::AfterElement;
        Ok(Some(record))
    }

    /// After the array's `]`: only whitespace may follow.
    fn end(&mut self) -> Result<Option<Record>, ReadError> {
        if self.cursor.skip_whitespace()?.is_some() {
            return Err(ReadError::malformed(
                self.cursor.line,
                "more data after the array's closing bracket",
            ));
        }
        self.state = State::Done;
        Ok(None)
    }

    fn unterminated(&self) -> ReadError {
        ReadError::malformed(
            self.cursor.line,
            format!(
                "the file ends inside the array (after record {}): is it complete?",
                self.number
            ),
        )
    }

    /// Reads one value, from its first byte to the byte before the `,` or `]` that ends it.
    fn element(&mut self) -> Result<Record, ReadError> {
        let line = self.cursor.line;
        self.number += 1;
        let max = self.limits.max_record_bytes;
        let mut bytes = Vec::new();
        let mut too_big = false;
        let mut closers: Vec<u8> = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        // A container or string at the top has ended: only whitespace may come before the
        // delimiter.
        let mut closed = false;
        loop {
            let Some(byte) = self.cursor.peek()? else {
                if in_string || !closers.is_empty() {
                    return Err(ReadError::malformed(
                        line,
                        format!(
                            "the file ends inside record {}: is it complete?",
                            self.number
                        ),
                    ));
                }
                break;
            };
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                    closed = closers.is_empty();
                }
            } else if closed {
                if !byte.is_ascii_whitespace() {
                    break;
                }
            } else {
                match byte {
                    b'"' => in_string = true,
                    b'{' => closers.push(b'}'),
                    b'[' => closers.push(b']'),
                    b'}' | b']' => match closers.pop() {
                        None => break,
                        Some(expected) if expected == byte => closed = closers.is_empty(),
                        Some(expected) => {
                            return Err(ReadError::malformed(
                                self.cursor.line,
                                format!(
                                    "record {}: {:?} where {:?} closes",
                                    self.number,
                                    char::from(byte),
                                    char::from(expected)
                                ),
                            ));
                        }
                    },
                    b',' if closers.is_empty() => break,
                    _ => {}
                }
                if closers.len() > MAX_DEPTH {
                    return Err(ReadError::malformed(
                        self.cursor.line,
                        format!(
                            "record {} nests deeper than {MAX_DEPTH} levels",
                            self.number
                        ),
                    ));
                }
            }
            self.cursor.bump(byte);
            if bytes.len() < max {
                bytes.push(byte);
            } else if !(closed && byte.is_ascii_whitespace()) {
                too_big = true;
            }
        }
        let content = if too_big {
            too_large(self.limits)
        } else {
            let end = bytes.trim_ascii_end().len();
            bytes.truncate(end);
            text(bytes)
        };
        Ok(Record {
            number: self.number,
            line,
            content,
        })
    }
}

impl<R: BufRead> Iterator for Documents<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(record) => record.map(Ok),
            Err(error) => {
                self.state = State::Done;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Content;

    /// The documents of `input`, or the first error.
    fn documents(input: &str, max: usize) -> Result<Vec<(u64, u64, Content)>, ReadError> {
        Documents::new(
            input.as_bytes(),
            Limits {
                max_record_bytes: max,
            },
        )
        .map(|r| r.map(|r| (r.number, r.line, r.content)))
        .collect()
    }

    fn doc(s: &str) -> Content {
        Content::Document(s.to_owned())
    }

    fn malformed(input: &str) -> String {
        match documents(input, 1000) {
            Err(ReadError::Malformed { detail, .. }) => detail,
            other => panic!("expected a malformed file, got {other:?}"),
        }
    }

    #[test]
    fn elements_with_nested_arrays_and_brackets_in_strings() {
        let input = "\u{feff} [\n  {\"a\": [1, [2, {\"b\": \"]}[,\"}]], \"q\": \"say \\\"hi\\\" \\\\\"},\n  {\"c\": \"\\u005d\"}\n,\n 42 , \"s,]\" ]\n";
        assert_eq!(
            documents(input, 1000).expect("reads"),
            [
                (
                    1,
                    2,
                    doc("{\"a\": [1, [2, {\"b\": \"]}[,\"}]], \"q\": \"say \\\"hi\\\" \\\\\"}")
                ),
                (2, 3, doc("{\"c\": \"\\u005d\"}")),
                (3, 5, doc("42")),
                (4, 5, doc("\"s,]\"")),
            ]
        );
    }

    #[test]
    fn an_empty_array_or_file_has_no_record() {
        assert!(documents("[]", 10).expect("reads").is_empty());
        assert!(documents(" [ \n ] \n", 10).expect("reads").is_empty());
        assert!(documents("", 10).expect("reads").is_empty());
    }

    #[test]
    fn an_object_is_one_document() {
        assert_eq!(
            documents("\n{\"a\": [1, 2]}\n", 100).expect("reads"),
            [(1, 2, doc("{\"a\": [1, 2]}"))]
        );
        assert!(malformed("{\"a\": 1} {\"b\": 2}").contains("after the document"));
    }

    #[test]
    fn an_oversized_element_is_unreadable_and_the_rest_is_read() {
        let big = format!("{{\"x\": \"{}\"}}", "y".repeat(500));
        let input = format!("[{big}, {{\"a\": 1}}]");
        let records = documents(&input, 64).expect("reads");
        assert!(matches!(&records[0].2, Content::Unreadable(why) if why.contains("64 bytes")));
        assert_eq!(records[1], (2, 1, doc("{\"a\": 1}")));
    }

    #[test]
    fn a_broken_array_refuses_the_file() {
        assert!(malformed("[{\"a\": 1}, {\"b\": 2}").contains("ends inside the array"));
        assert!(malformed("[{\"a\": 1}, {\"b\": 2").contains("ends inside record 2"));
        assert!(malformed("[{\"a\": \"open]").contains("ends inside record 1"));
        assert!(malformed("[{\"a\": 1},]").contains("comma before"));
        assert!(malformed("[{\"a\": 1} {\"b\": 2}]").contains("expected a comma"));
        assert!(malformed("[{\"a\": 1]]").contains("closes"));
        assert!(malformed("[1] x").contains("after the array"));
        assert!(malformed("\"just a string\"").contains("array of documents"));
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        assert!(malformed(&deep).contains("deeper"));
    }

    fn value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Strings full of what the scanner must not mistake for structure.
            "[\\[\\]{}\",:\\\\ a-z\u{e9}\u{1F600}\n\t]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\\]\\[\"]{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn every_element_comes_back_as_written(
            values in proptest::collection::vec(value(), 0..8),
            pretty in proptest::bool::ANY,
        ) {
            let texts: Vec<String> = values
                .iter()
                .map(|v| if pretty {
                    serde_json::to_string_pretty(v).expect("json")
                } else {
                    serde_json::to_string(v).expect("json")
                })
                .collect();
            let input = format!("[\n{}\n]\n", texts.join(" ,\n  "));
            let read = documents(&input, 1 << 20).expect("reads");
            proptest::prop_assert_eq!(read.len(), values.len());
            for ((_, _, content), value) in read.into_iter().zip(&values) {
                let Content::Document(text) = content else {
                    panic!("unreadable: {content:?}");
                };
                let parsed: serde_json::Value = serde_json::from_str(&text).expect("an element");
                proptest::prop_assert_eq!(&parsed, value);
            }
        }
    }
}

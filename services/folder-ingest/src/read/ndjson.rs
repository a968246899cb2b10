//! NDJSON (`.ndjson`, `.jsonl`): every non-blank line is one record, sent as it is (the gateway
//! checks that it is JSON). A line is never held beyond the record limit.

use std::io::{self, BufRead};

use super::{BOM, Limits, ReadError, Record, text, too_large};

pub struct Lines<R> {
    reader: R,
    limits: Limits,
    /// Lines read so far.
    line: u64,
    number: u64,
    buffer: Vec<u8>,
    failed: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, limits: Limits) -> Self {
        Self {
            reader,
            limits,
            line: 0,
            number: 0,
            buffer: Vec::new(),
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let truncated = match read_line_capped(
                &mut self.reader,
                &mut self.buffer,
                self.limits.max_record_bytes,
            ) {
                Ok(Some(truncated)) => truncated,
                Ok(None) => return None,
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error.into()));
                }
            };
            self.line += 1;
            let mut bytes = self.buffer.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            }
            let bytes = bytes.trim_ascii();
            if bytes.is_empty() && !truncated {
                continue;
            }
            self.number += 1;
            let content = if truncated {
                too_large(self.limits)
            } else {
                text(bytes.to_vec())
            };
            return Some(Ok(Record {
                number: self.number,
                line: self.line,
                content,
            }));
        }
    }
}

/// Reads the next line (without its `\n`) into `buffer`, keeping at most `cap` bytes of it and
/// skipping the rest. `None` at the end of the input; otherwise whether the line was cut.
pub(crate) fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    buffer.clear();
    let mut truncated = false;
    let mut read_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(read_any.then_some(truncated));
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let room = cap.saturating_sub(buffer.len());
        if chunk.len() > room {
            truncated = true;
            buffer.extend_from_slice(&chunk[..room]);
        } else {
            buffer.extend_from_slice(chunk);
        }
        let used = chunk.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(truncated));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Content;

    fn read(input: &str, max: usize) -> Vec<(u64, u64, Content)> {
        Lines::new(
            input.as_bytes(),
            Limits {
                max_record_bytes: max,
            },
        )
        .map(|r| r.expect("readable"))
        .map(|r| (r.number, r.line, r.content))
        .collect()
    }

    fn doc(s: &str) -> Content {
        Content::Document(s.to_owned())
    }

    #[test]
    fn blank_lines_are_skipped_and_numbers_count_records() {
        let input = "\u{feff}{\"a\":1}\r\n\n   \n{\"b\":2}\n\t\n{\"c\":3}";
        assert_eq!(
            read(input, 100),
            [
                (1, 1, doc("{\"a\":1}")),
                (2, 4, doc("{\"b\":2}")),
                (3, 6, doc("{\"c\":3}")),
            ]
        );
        assert!(read("", 100).is_empty());
        assert!(read("\n\n", 100).is_empty());
    }

    #[test]
    fn a_long_line_is_unreadable_and_never_held() {
        let long = "x".repeat(10_000);
        let input = format!("{{\"a\":1}}\n{long}\n{{\"b\":2}}\n");
        let records = read(&input, 64);
        assert_eq!(records.len(), 3);
        assert!(matches!(&records[1].2, Content::Unreadable(why) if why.contains("64 bytes")));
        assert_eq!(records[2], (3, 3, doc("{\"b\":2}")));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_unreadable() {
        let input: &[u8] = b"{\"a\":\"\xff\"}\n{\"b\":2}\n";
        let records: Vec<Record> = Lines::new(
            input,
            Limits {
                max_record_bytes: 100,
            },
        )
        .map(|r| r.expect("readable"))
        .collect();
        assert!(matches!(&records[0].content, Content::Unreadable(why) if why.contains("UTF-8")));
        assert_eq!(records[1].content, doc("{\"b\":2}"));
    }

    #[test]
    fn capped_line_reading_across_small_buffers() {
        let input = "abcdef\nghi\n";
        let mut reader = io::BufReader::with_capacity(2, input.as_bytes());
        let mut buffer = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut buffer, 3).expect("io"),
            Some(true)
        );
        assert_eq!(buffer, b"abc");
        assert_eq!(
            read_line_capped(&mut reader, &mut buffer, 3).expect("io"),
            Some(false)
        );
        assert_eq!(buffer, b"ghi");
        assert_eq!(
            read_line_capped(&mut reader, &mut buffer, 3).expect("io"),
            None
        );
    }
}

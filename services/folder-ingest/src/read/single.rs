//! `.xml`: the whole file is one document, sent byte for byte (no byte order mark or encoding
//! declaration is touched: a fiscal document may be signed).

use std::io::{BufRead, Read};

use super::{Limits, ReadError, Record, text, too_large};

pub struct Whole<R> {
    reader: Option<R>,
    limits: Limits,
}

impl<R: BufRead> Whole<R> {
    pub fn new(reader: R, limits: Limits) -> Self {
        Self {
            reader: Some(reader),
            limits,
        }
    }
}

impl<R: BufRead> Iterator for Whole<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.take()?;
        let max = self.limits.max_record_bytes;
        let mut bytes = Vec::new();
        // One byte more than the limit tells a file at the limit from a larger one.
        let mut limited = reader.take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1));
        if let Err(error) = limited.read_to_end(&mut bytes) {
            return Some(Err(error.into()));
        }
        if bytes.trim_ascii().is_empty() {
            return None;
        }
        let content = if bytes.len() > max {
            // Drain the rest so that a hashing reader underneath sees every byte.
            if let Err(error) = std::io::copy(&mut limited.into_inner(), &mut std::io::sink()) {
                return Some(Err(error.into()));
            }
            too_large(self.limits)
        } else {
            text(bytes)
        };
        Some(Ok(Record {
            number: 1,
            line: 1,
            content,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Content;

    fn read(input: &str, max: usize) -> Vec<Record> {
        Whole::new(
            input.as_bytes(),
            Limits {
                max_record_bytes: max,
            },
        )
        .map(|r| r.expect("readable"))
        .collect()
    }

    #[test]
    fn the_file_is_one_document_byte_for_byte() {
        let xml = "<?xml version=\"1.0\"?>\n<Receipt>\n  <Number>1</Number>\n</Receipt>\n";
        let records = read(xml, 1000);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].content, Content::Document(xml.to_owned()));
        assert!(read("  \n", 1000).is_empty());
        assert!(matches!(&read(xml, 10)[0].content, Content::Unreadable(_)));
        assert!(matches!(
            &read(xml, xml.len())[0].content,
            Content::Document(_)
        ));
    }
}

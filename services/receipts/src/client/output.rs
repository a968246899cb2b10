//! How client commands print: aligned tables and text for people, JSON, NDJSON and CSV for
//! scripts.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// How a list is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns with a header line.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values (RFC 4180) with a header line.
    Csv,
}

/// How one object is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document.
    Json,
}

/// Something printed as a row of a list.
pub trait Row: Serialize {
    /// The column names (also the CSV header).
    const COLUMNS: &'static [&'static str];
    /// One cell per column.
    fn cells(&self) -> Vec<String>;
}

/// A time as the API writes it: RFC 3339 UTC with milliseconds.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// Prints a list that may come page by page: rows go out as they come, except a table's, which
/// are aligned at the end.
pub struct ListWriter<W: Write> {
    out: W,
    format: ListFormat,
    table: Vec<Vec<String>>,
    written: usize,
}

impl<W: Write> ListWriter<W> {
    pub fn new(out: W, format: ListFormat) -> Self {
        Self {
            out,
            format,
            table: Vec::new(),
            written: 0,
        }
    }

    pub fn rows<R: Row>(&mut self, rows: &[R]) -> anyhow::Result<()> {
        for row in rows {
            match self.format {
                ListFormat::Table => self.table.push(row.cells()),
                ListFormat::Json => {
                    self.out.write_all(if self.written == 0 {
                        b"[\n  "
                    } else {
                        b",\n  "
                    })?;
                    serde_json::to_writer(&mut self.out, row)?;
                }
                ListFormat::Ndjson => {
                    serde_json::to_writer(&mut self.out, row)?;
                    self.out.write_all(b"\n")?;
                }
                ListFormat::Csv => {
                    if self.written == 0 {
                        csv_record(&mut self.out, R::COLUMNS.iter().copied())?;
                    }
                    csv_record(&mut self.out, row.cells().iter().map(String::as_str))?;
                }
            }
            self.written += 1;
        }
        Ok(())
    }

    /// Ends the list (an empty list still gets its table or CSV header, or `[]`).
    pub fn finish<R: Row>(mut self) -> anyhow::Result<usize> {
        match self.format {
            ListFormat::Table => {
                let mut lines = vec![R::COLUMNS.iter().map(|c| (*c).to_owned()).collect()];
                lines.append(&mut self.table);
                write_table(&mut self.out, &lines)?;
            }
            ListFormat::Json if self.written == 0 => self.out.write_all(b"[]\n")?,
            ListFormat::Json => self.out.write_all(b"\n]\n")?,
            ListFormat::Csv if self.written == 0 => {
                csv_record(&mut self.out, R::COLUMNS.iter().copied())?;
            }
            ListFormat::Ndjson | ListFormat::Csv => {}
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

/// Prints a whole list at once.
pub fn list<R: Row>(rows: &[R], format: ListFormat) -> anyhow::Result<()> {
    let mut writer = ListWriter::new(std::io::stdout().lock(), format);
    writer.rows(rows)?;
    writer.finish::<R>().map(drop)
}

/// Columns padded to their widest cell, two spaces apart; the last one is not padded.
pub fn write_table(out: &mut impl Write, lines: &[Vec<String>]) -> std::io::Result<()> {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                let pad = widths[c] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// One CSV record: fields with a comma, quote or line break are quoted, quotes doubled.
pub fn csv_record<'a>(
    out: &mut impl Write,
    fields: impl IntoIterator<Item = &'a str>,
) -> std::io::Result<()> {
    let mut line = String::new();
    for (n, field) in fields.into_iter().enumerate() {
        if n > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

/// Pretty JSON and a newline, to stdout.
pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `label  value` lines, the labels aligned.
pub fn fields(out: &mut impl Write, fields: &[(&str, String)]) -> std::io::Result<()> {
    let width = fields.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in fields {
        writeln!(out, "{label:<width$}  {value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Pair {
        name: String,
        note: String,
    }

    impl Row for Pair {
        const COLUMNS: &'static [&'static str] = &["name", "note"];
        fn cells(&self) -> Vec<String> {
            vec![self.name.clone(), self.note.clone()]
        }
    }

    fn pairs() -> Vec<Pair> {
        vec![
            Pair {
                name: "a".into(),
                note: "plain".into(),
            },
            Pair {
                name: "long name".into(),
                note: "with, comma and \"quotes\"".into(),
            },
        ]
    }

    fn render(format: ListFormat, pages: &[&[Pair]]) -> String {
        let mut out = Vec::new();
        let mut writer = ListWriter::new(&mut out, format);
        for page in pages {
            writer.rows(page).expect("rows");
        }
        writer.finish::<Pair>().expect("finish");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn tables_align_columns_across_pages() {
        let rows = pairs();
        let text = render(ListFormat::Table, &[&rows[..1], &rows[1..]]);
        assert_eq!(
            text,
            "name       note\na          plain\nlong name  with, comma and \"quotes\"\n"
        );
        assert_eq!(render(ListFormat::Table, &[]), "name  note\n");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let rows = pairs();
        assert_eq!(
            render(ListFormat::Csv, &[&rows]),
            "name,note\r\na,plain\r\nlong name,\"with, comma and \"\"quotes\"\"\"\r\n"
        );
        assert_eq!(render(ListFormat::Csv, &[]), "name,note\r\n");
    }

    #[test]
    fn json_is_one_array_and_ndjson_one_object_per_line() {
        let rows = pairs();
        let json: serde_json::Value =
            serde_json::from_str(&render(ListFormat::Json, &[&rows[..1], &rows[1..]]))
                .expect("json");
        assert_eq!(json.as_array().map(Vec::len), Some(2));
        assert_eq!(json[1]["name"], "long name");
        assert_eq!(render(ListFormat::Json, &[]), "[]\n");
        let ndjson = render(ListFormat::Ndjson, &[&rows]);
        assert_eq!(ndjson.lines().count(), 2);
        assert!(
            ndjson
                .lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
    }
}

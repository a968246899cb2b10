//! The effective-dated VAT table of a type set (`vat-rates.toml` at the root of the types
//! directory): which rates a seller of a country may charge on a given day.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

/// One period of a country's rates: from `from` to `until` (inclusive; open when absent).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Period {
    pub country: String,
    pub from: NaiveDate,
    #[serde(default)]
    pub until: Option<NaiveDate>,
    /// Percentages as decimal strings: `"5.5"`.
    pub rates: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "period")]
    periods: Vec<Period>,
}

/// The parsed table. Empty when the directory has no `vat-rates.toml`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct VatTable {
    periods: Vec<(String, NaiveDate, Option<NaiveDate>, Vec<Decimal>)>,
}

impl VatTable {
    /// Parses the table; errors say which period is wrong.
    pub fn parse(text: &str) -> Result<VatTable, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut periods = Vec::with_capacity(file.periods.len());
        for (i, period) in file.periods.into_iter().enumerate() {
            let which = format!("period {} ({})", i + 1, period.country);
            if period.until.is_some_and(|until| until < period.from) {
                return Err(format!("{which}: `until` is before `from`"));
            }
            let rates = period
                .rates
                .iter()
                .map(|r| super::decimal::parse_plain(r).map(|d| d.normalize()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{which}: {e}"))?;
            periods.push((period.country, period.from, period.until, rates));
        }
        Ok(VatTable { periods })
    }

    /// Every rate in force in `country` on `day`, highest first, without repeats; empty when
    /// the table has no period for them.
    pub fn rates(&self, country: &str, day: NaiveDate) -> Vec<Decimal> {
        let mut rates: Vec<Decimal> = self
            .periods
            .iter()
            .filter(|(c, from, until, _)| {
                c == country && *from <= day && until.is_none_or(|u| day <= u)
            })
            .flat_map(|(_, _, _, rates)| rates.iter().copied())
            .collect();
        rates.sort_by(|a, b| b.cmp(a));
        rates.dedup();
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn rates_follow_their_periods() {
        let table = VatTable::parse(
            r#"
            [[period]]
            country = "FI"
            from = "2024-09-01"
            until = "2025-12-31"
            rates = ["25.5", "14", "10", "0"]
            [[period]]
            country = "FI"
            from = "2026-01-01"
            rates = ["25.5", "13.5", "10", "0"]
            "#,
        )
        .expect("table");
        let text = |rates: Vec<Decimal>| rates.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(
            text(table.rates("FI", day("2025-12-31"))),
            ["25.5", "14", "10", "0"]
        );
        assert_eq!(
            text(table.rates("FI", day("2026-01-01"))),
            ["25.5", "13.5", "10", "0"]
        );
        assert!(table.rates("FI", day("2024-08-31")).is_empty());
        assert!(table.rates("DE", day("2026-01-01")).is_empty());
    }

    #[test]
    fn a_wrong_table_says_where() {
        let error = VatTable::parse(
            "[[period]]\ncountry = \"DE\"\nfrom = \"2026-01-01\"\nrates = [\"x\"]\n",
        )
        .expect_err("bad rate");
        assert!(error.contains("period 1 (DE)"), "{error}");
        let error = VatTable::parse(
            "[[period]]\ncountry = \"DE\"\nfrom = \"2026-01-01\"\nuntil = \"2025-01-01\"\nrates = []\n",
        )
        .expect_err("bad period");
        assert!(error.contains("before"), "{error}");
    }
}

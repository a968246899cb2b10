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
    #[serde(default)]
    fallback: Option<Fallback>,
    #[serde(default, rename = "period")]
    periods: Vec<Period>,
}

/// The range of rates allowed where the table has no period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fallback {
    min: String,
    max: String,
}

/// The parsed table. Empty when the directory has no `vat-rates.toml`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct VatTable {
    periods: Vec<(String, NaiveDate, Option<NaiveDate>, Vec<Decimal>)>,
    fallback: Option<(Decimal, Decimal)>,
}

impl VatTable {
    /// Parses the table; errors say which period is wrong.
    pub fn parse(text: &str) -> Result<VatTable, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let fallback = match &file.fallback {
            Some(f) => {
                let bound = |text: &str| {
                    super::decimal::parse_plain(text).map_err(|e| format!("fallback: {e}"))
                };
                Some((bound(&f.min)?, bound(&f.max)?))
            }
            None => None,
        };
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
        Ok(VatTable { periods, fallback })
    }

    /// Whether a seller of `country` may charge `rate` on `day`: one of the day's rates, or,
    /// where the table has none, within the fallback range (if the table has one).
    pub fn allows(&self, country: &str, day: NaiveDate, rate: Decimal) -> bool {
        let rates = self.rates(country, day);
        match (rates.is_empty(), self.fallback) {
            (false, _) => rates.contains(&rate),
            (true, Some((min, max))) => min <= rate && rate <= max,
            (true, None) => false,
        }
    }

    /// The rates `allows` accepts, as a sentence for messages.
    pub fn describe(&self, country: &str, day: NaiveDate) -> String {
        let rates = self.rates(country, day);
        match (rates.is_empty(), self.fallback) {
            (false, _) => {
                let list: Vec<String> = rates.iter().map(Decimal::to_string).collect();
                format!("the VAT rates of {country} are {}", list.join(", "))
            }
            (true, Some((min, max))) => format!("VAT rates are between {min} and {max}"),
            (true, None) => format!("there are no VAT rates for {country:?} on {day}"),
        }
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
        assert!(
            !table.allows("DE", day("2026-01-01"), Decimal::from(19)),
            "no fallback"
        );
        assert!(table.allows("FI", day("2026-01-01"), "13.50".parse().expect("rate")));
        assert_eq!(
            table.describe("FI", day("2026-01-01")),
            "the VAT rates of FI are 25.5, 13.5, 10, 0"
        );
        let with_fallback =
            VatTable::parse("[fallback]\nmin = \"0\"\nmax = \"30\"\n").expect("table");
        assert!(with_fallback.allows("HU", day("2026-01-01"), Decimal::from(27)));
        assert!(!with_fallback.allows("HU", day("2026-01-01"), Decimal::from(31)));
        assert_eq!(
            with_fallback.describe("HU", day("2026-01-01")),
            "VAT rates are between 0 and 30"
        );
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

//! VAT rates a seller may charge, by the seller's country: the standard, reduced and zero rates
//! in force in 2026, including the regional rates of the country's own VAT territory (Azores and
//! Madeira, Corsica and the French overseas departments, the Greek islands), since a receipt from
//! there is still issued under the country's VAT id. Countries without a table accept 0..=30 %.

use rust_decimal::Decimal;

/// Rates in hundredths of a percent (`550` is 5.5 %), highest first.
const RATES: &[(&str, &[i64])] = &[
    ("AT", &[2000, 1300, 1000, 0]),
    ("BE", &[2100, 1200, 600, 0]),
    ("CZ", &[2100, 1200, 0]),
    ("DE", &[1900, 700, 0]),
    ("DK", &[2500, 0]),
    ("ES", &[2100, 1000, 400, 0]),
    // 14 % was the food and restaurant rate until 2025-12-31, 13.5 % since 2026-01-01.
    ("FI", &[2550, 1400, 1350, 1000, 0]),
    // Mainland 20, 10, 5.5, 2.1; Corsica 13, 0.9; overseas departments 8.5, 1.75, 1.05.
    ("FR", &[2000, 1300, 1000, 850, 550, 210, 175, 105, 90, 0]),
    ("GB", &[2000, 500, 0]),
    // Mainland 24, 13, 6; reduced island rates 17, 9, 4.
    ("GR", &[2400, 1700, 1300, 900, 600, 400, 0]),
    ("IE", &[2300, 1350, 900, 480, 0]),
    ("IT", &[2200, 1000, 500, 400, 0]),
    ("LU", &[1700, 1400, 800, 300, 0]),
    ("NL", &[2100, 900, 0]),
    ("PL", &[2300, 800, 500, 0]),
    // Mainland 23, 13, 6; Madeira 22, 12, 5; Azores 16, 9, 4.
    ("PT", &[2300, 2200, 1600, 1300, 1200, 900, 600, 500, 400, 0]),
    ("SE", &[2500, 1200, 600, 0]),
];

/// Bounds for countries without a table, in percent.
const FALLBACK_MAX: i64 = 30;

/// The rates of `country` (ISO 3166-1 alpha-2), if it has a table.
pub(crate) fn rates(country: &str) -> Option<Vec<Decimal>> {
    RATES.iter().find(|(c, _)| *c == country).map(|(_, rates)| {
        rates
            .iter()
            .map(|r| Decimal::new(*r, 2).normalize())
            .collect()
    })
}

/// Whether a seller of `country` (unknown: `None`) may charge `rate` percent.
pub(crate) fn is_allowed(country: Option<&str>, rate: Decimal) -> bool {
    match country.and_then(rates) {
        Some(rates) => rates.contains(&rate),
        None => rate >= Decimal::ZERO && rate <= Decimal::from(FALLBACK_MAX),
    }
}

/// A sentence naming the rates `is_allowed` accepts, for messages.
pub(crate) fn describe_allowed(country: Option<&str>) -> String {
    match country.and_then(|c| rates(c).map(|r| (c, r))) {
        Some((country, rates)) => {
            let list: Vec<String> = rates.iter().map(Decimal::to_string).collect();
            format!("the VAT rates of {country} are {}", list.join(", "))
        }
        None => format!("VAT rates are between 0 and {FALLBACK_MAX}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn table_covers_the_required_countries_with_sane_rates() {
        for country in [
            "AT", "BE", "CZ", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "LU", "NL", "PL",
            "PT", "SE",
        ] {
            let rates = rates(country).expect(country);
            assert!(rates.contains(&Decimal::ZERO), "{country} has a zero rate");
            assert!(
                rates.windows(2).all(|w| w[0] > w[1]),
                "{country} sorted, unique"
            );
            assert!(rates.iter().all(|r| *r <= dec("27")), "{country}");
        }
    }

    #[test]
    fn rates_compare_by_value() {
        assert!(is_allowed(Some("DE"), dec("19")));
        assert!(is_allowed(Some("DE"), dec("19.00")));
        assert!(is_allowed(Some("DE"), dec("7")));
        assert!(!is_allowed(Some("DE"), dec("16")));
        assert!(is_allowed(Some("FR"), dec("5.5")));
        assert!(is_allowed(Some("FR"), dec("5.50")));
        assert!(is_allowed(Some("FI"), dec("25.5")));
        assert!(!is_allowed(Some("FI"), dec("24")));
        assert!(is_allowed(Some("IE"), dec("13.5")));
    }

    #[test]
    fn countries_without_table_accept_0_to_30() {
        for country in [None, Some("HU"), Some("XX")] {
            assert!(is_allowed(country, dec("0")));
            assert!(is_allowed(country, dec("27")));
            assert!(is_allowed(country, dec("30")));
            assert!(!is_allowed(country, dec("30.01")));
            assert!(!is_allowed(country, dec("-1")));
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe_allowed(Some("DE")),
            "the VAT rates of DE are 19, 7, 0"
        );
        assert_eq!(describe_allowed(None), "VAT rates are between 0 and 30");
    }
}

//! `decimal`: exact decimal numbers for CEL rules. Money is never a CEL `double`: `decimal("3.50")`
//! makes one, and `+ - * /`, comparisons and `==` work on them exactly (overflow and division by
//! zero are evaluation errors, never wrapped or rounded values).

use std::any::Any;
use std::cmp::Ordering;

use cel::ExecutionError;
use cel::common::traits::{Adder, Comparer, Divider, Multiplier, Negator, Subtractor};
use cel::common::types::Type;
use cel::common::value::{CowVal, StaticVal, Val};
use rust_decimal::{Decimal, RoundingStrategy};

pub(crate) static DECIMAL_TYPE: Type = Type::new_unspecified_type("decimal");

/// A CEL value holding a [`Decimal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dec(pub Decimal);

impl Val for Dec {
    fn get_type(&self) -> &Type {
        <Self as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        &DECIMAL_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Dec>().is_some_and(|o| o.0 == self.0)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_subtractor<'b, 'v>(&'b self) -> Option<&'b (dyn Subtractor + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_multiplier<'b, 'v>(&'b self) -> Option<&'b (dyn Multiplier + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_divider<'b, 'v>(&'b self) -> Option<&'b (dyn Divider + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_negator<'b, 'v>(&'b self) -> Option<&'b (dyn Negator + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_comparer(&self) -> Option<&dyn Comparer> {
        Some(self)
    }
}

impl StaticVal for Dec {}

fn operand(operator: &str, rhs: &dyn Val) -> Result<Decimal, ExecutionError> {
    rhs.downcast_ref::<Dec>().map(|d| d.0).ok_or_else(|| {
        ExecutionError::function_error(
            operator,
            format!(
                "a decimal can only be combined with a decimal, not a {} (wrap it in decimal())",
                rhs.get_type().name()
            ),
        )
    })
}

fn owned<'b, 'v>(
    operator: &str,
    result: Option<Decimal>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    result
        .map(|d| CowVal::Owned(Box::new(Dec(d))))
        .ok_or_else(|| ExecutionError::function_error(operator, "decimal overflow"))
}

impl Adder for Dec {
    fn add<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        owned("_+_", self.0.checked_add(operand("_+_", rhs)?))
    }
}

impl Subtractor for Dec {
    fn sub<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        owned("_-_", self.0.checked_sub(operand("_-_", rhs)?))
    }
}

impl Multiplier for Dec {
    fn mul<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        owned("_*_", self.0.checked_mul(operand("_*_", rhs)?))
    }
}

impl Divider for Dec {
    fn div<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let divisor = operand("_/_", rhs)?;
        if divisor.is_zero() {
            return Err(ExecutionError::function_error("_/_", "division by zero"));
        }
        owned("_/_", self.0.checked_div(divisor))
    }
}

impl Negator for Dec {
    fn negate<'v>(&self) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        Ok(Box::new(Dec(-self.0)))
    }
}

impl Comparer for Dec {
    fn compare(&self, rhs: &dyn Val) -> Result<Ordering, ExecutionError> {
        Ok(self.0.cmp(&operand("compare", rhs)?))
    }
}

/// Parses a plain decimal: optional `-`, digits, optionally `.` and digits. No exponent, no `+`,
/// no separators (rust_decimal alone would accept `1_000`).
pub(crate) fn parse_plain(text: &str) -> Result<Decimal, String> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return Err(format!(
            "expected a decimal number such as \"3.50\", found {text:?}"
        ));
    }
    Decimal::from_str_exact(text).map_err(|_| format!("{text:?} has too many digits"))
}

/// The rounding modes rules may name.
pub(crate) fn rounding(mode: &str) -> Option<RoundingStrategy> {
    Some(match mode {
        "half-up" => RoundingStrategy::MidpointAwayFromZero,
        "half-down" => RoundingStrategy::MidpointTowardZero,
        "half-even" => RoundingStrategy::MidpointNearestEven,
        "up" => RoundingStrategy::AwayFromZero,
        "down" => RoundingStrategy::ToZero,
        "ceiling" => RoundingStrategy::ToPositiveInfinity,
        "floor" => RoundingStrategy::ToNegativeInfinity,
        _ => return None,
    })
}

/// The names [`rounding`] accepts, for messages.
pub(crate) const ROUNDING_MODES: &str = "half-up, half-down, half-even, up, down, ceiling, floor";

/// `value` rounded to `places` by `strategy`, shown with exactly that many decimals.
pub(crate) fn round(value: Decimal, places: u32, strategy: RoundingStrategy) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(places, strategy);
    rounded.rescale(places);
    rounded
}

/// `value` with exactly `decimals` decimals when no digit is lost (`3.5` at 2 is `3.50`;
/// `3.505` stays).
pub(crate) fn at_scale(value: Decimal, decimals: u32) -> Decimal {
    let mut value = value.normalize();
    if value.scale() <= decimals {
        value.rescale(decimals);
    }
    value
}

/// The number of decimals that matter (`3.50` has 1).
pub(crate) fn scale(value: Decimal) -> u32 {
    value.normalize().scale()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn decimals_are_parsed_strictly() {
        for ok in ["0", "3.50", "-1.25", "007", "1234567890.123456"] {
            assert!(parse_plain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-", ".5", "5.", "+1", "1e3", "1_000", "1,5", " 1", "1.2.3", "NaN", "0x10", "٣",
        ] {
            assert!(parse_plain(bad).is_err(), "{bad}");
        }
        assert!(
            parse_plain("99999999999999999999999999999999")
                .expect_err("too long")
                .contains("too many digits")
        );
    }

    #[test]
    fn rounding_modes() {
        let half_up = RoundingStrategy::MidpointAwayFromZero;
        assert_eq!(round(dec("0.245"), 2, half_up).to_string(), "0.25");
        assert_eq!(
            round(dec("0.255"), 2, half_up).to_string(),
            "0.26",
            "not banker's"
        );
        assert_eq!(round(dec("-0.245"), 2, half_up).to_string(), "-0.25");
        assert_eq!(round(dec("3.5"), 2, half_up).to_string(), "3.50");
        let mode = |m: &str| rounding(m).expect("mode");
        assert_eq!(round(dec("2.5"), 0, mode("half-even")).to_string(), "2");
        assert_eq!(round(dec("2.5"), 0, mode("half-down")).to_string(), "2");
        assert_eq!(round(dec("2.1"), 0, mode("up")).to_string(), "3");
        assert_eq!(round(dec("-2.1"), 0, mode("floor")).to_string(), "-3");
        assert_eq!(round(dec("-2.9"), 0, mode("ceiling")).to_string(), "-2");
        assert_eq!(round(dec("2.9"), 0, mode("down")).to_string(), "2");
        assert!(rounding("bankers").is_none());
        assert_eq!(scale(dec("3.500")), 1);
    }
}

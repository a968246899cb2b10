//! The functions CEL rules may call (documented in `docs/receipt-types.md`). They are Rust and
//! tested here; which of them a receipt type uses, and how, is configuration.
//!
//! Every function is an overload of one shared [`Env`]; the VAT table of the type set is the
//! variable `vat` of each evaluation.

use std::any::Any;
use std::sync::{Arc, LazyLock};

use cel::common::types::{CelBool, CelInt, CelList, CelString, LIST_TYPE, STRING_TYPE, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{Env, ExecutionError};
use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;

use super::decimal::{self, DECIMAL_TYPE, Dec};
use super::vat::VatTable;
use crate::{currency, tax_id};

/// The environment every rule is compiled in: the CEL standard library, `decimal` and the
/// domain functions.
pub(crate) fn env() -> Arc<Env> {
    static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build()));
    Arc::clone(&ENV)
}

/// The type set's VAT table as the CEL variable `vat`: `vat.rates(country, date)`.
#[derive(Debug, Clone)]
pub(crate) struct VatVal(pub Arc<VatTable>);

static VAT_TYPE: Type = Type::new_unspecified_type("vat_table");

impl Val for VatVal {
    fn get_type(&self) -> &Type {
        <Self as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        &VAT_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other
            .downcast_ref::<VatVal>()
            .is_some_and(|o| Arc::ptr_eq(&o.0, &self.0))
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for VatVal {}

/// `vat.rates(country, date)`: the rates in force in `country` on the day of `date` (a date or
/// a date-time's local date), highest first; empty when the table has none.
fn rates(
    vat: &VatVal,
    country: &CelString<'_>,
    date: &CelString<'_>,
) -> Result<CelList<'static>, ExecutionError> {
    let day = parse_day(date.inner()).ok_or_else(|| {
        error(
            "rates",
            format!("expected a date or date-time, found {:?}", date.inner()),
        )
    })?;
    let rates: Vec<Box<dyn Val>> = vat
        .0
        .rates(country.inner(), day)
        .into_iter()
        .map(|rate| Box::new(Dec(rate)) as Box<dyn Val>)
        .collect();
    Ok(CelList::from(rates))
}

/// `vat.allows(country, date, rate)`: one of the day's rates, or within the table's fallback
/// range where it has none.
fn allows(
    vat: &VatVal,
    country: &CelString<'_>,
    date: &CelString<'_>,
    rate: &Dec,
) -> Result<CelBool, ExecutionError> {
    let day = day_of("allows", date)?;
    Ok(vat.0.allows(country.inner(), day, rate.0).into())
}

/// `vat.describe(country, date)`: what `allows` accepts, as a sentence.
fn describe(
    vat: &VatVal,
    country: &CelString<'_>,
    date: &CelString<'_>,
) -> Result<CelString<'static>, ExecutionError> {
    let day = day_of("describe", date)?;
    Ok(vat.0.describe(country.inner(), day).into())
}

fn day_of(function: &str, date: &CelString<'_>) -> Result<NaiveDate, ExecutionError> {
    parse_day(date.inner()).ok_or_else(|| {
        error(
            function,
            format!("expected a date or date-time, found {:?}", date.inner()),
        )
    })
}

fn build() -> Env {
    let mut env = Env::stdlib();
    // The declarations below are fixed and distinct: a clash is a bug caught by every test.
    let declared = declare(&mut env);
    if let Err(error) = declared {
        tracing::error!(%error, "declaring the CEL functions of receipt types failed");
    }
    env
}

fn declare(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(DECIMAL_TYPE.to_owned())?;
    env.add_type(VAT_TYPE.to_owned())?;
    cel::add_member_overload!(env, fn rates: (VatVal, CelString, CelString) -> Result<CelList>)?;
    cel::add_member_overload!(env, fn allows: (VatVal, CelString, CelString, Dec) -> Result<CelBool>)?;
    cel::add_member_overload!(env, fn describe: (VatVal, CelString, CelString) -> Result<CelString<'static>>)?;
    cel::add_overload!(env, fn decimal_string: (Dec) -> CelString<'static>, name = "string", id = "string(decimal)")?;
    cel::add_overload!(env, fn decimal: (CelString) -> Result<Dec>, id = "decimal(string)")?;
    cel::add_overload!(env, fn decimal_of_int: (CelInt) -> Dec, name = "decimal", id = "decimal(int)")?;
    cel::add_overload!(env, fn is_decimal: (CelString) -> CelBool, name = "is_decimal")?;
    cel::add_member_overload!(env, fn round: (Dec, CelInt) -> Result<Dec>)?;
    cel::add_member_overload!(env, fn round_by: (Dec, CelInt, CelString) -> Result<Dec>, name = "round")?;
    cel::add_member_overload!(env, fn scale: (Dec) -> CelInt)?;
    cel::add_member_overload!(env, fn abs: (Dec) -> Dec)?;
    env.add_overload("sum", "sum(list)", vec![LIST_TYPE], sum)?;
    env.add_overload(
        "sum_of",
        "sum_of(list,string)",
        vec![LIST_TYPE, STRING_TYPE],
        sum_of,
    )?;
    cel::add_overload!(env, fn is_currency: (CelString) -> CelBool, name = "is_currency")?;
    cel::add_overload!(env, fn currency_minor_units: (CelString) -> Result<CelInt>, name = "currency_minor_units")?;
    cel::add_overload!(env, fn tax_id_valid: (CelString) -> CelBool, name = "tax_id_valid")?;
    cel::add_overload!(env, fn tax_id_country: (CelString) -> CelString<'static>, name = "tax_id_country")?;
    cel::add_overload!(env, fn tax_id_problem: (CelString) -> CelString<'static>, name = "tax_id_problem")?;
    cel::add_overload!(env, fn tax_id_error: (CelString) -> CelString<'static>, name = "tax_id_error")?;
    cel::add_overload!(env, fn seconds_between: (CelString, CelString) -> Result<CelInt>, name = "seconds_between")?;
    cel::add_overload!(env, fn format_amount: (Dec, CelString) -> CelString<'static>, name = "format_amount")?;
    cel::add_overload!(env, fn within_minor_units: (CelString, CelString) -> Result<CelBool>, name = "within_minor_units")?;
    env.add_overload(
        "join",
        "join(list,string)",
        vec![LIST_TYPE, STRING_TYPE],
        join,
    )?;
    cel::add_overload!(env, fn is_datetime: (CelString) -> CelBool, name = "is_datetime")?;
    cel::add_overload!(env, fn is_date: (CelString) -> CelBool, name = "is_date")?;
    cel::add_overload!(env, fn date_of: (CelString) -> Result<CelString<'static>>, name = "date_of")?;
    cel::add_overload!(env, fn minutes_between: (CelString, CelString) -> Result<CelInt>, name = "minutes_between")?;
    cel::add_overload!(env, fn days_between: (CelString, CelString) -> Result<CelInt>, name = "days_between")?;
    Ok(())
}

fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn decimal(text: &CelString<'_>) -> Result<Dec, ExecutionError> {
    decimal::parse_plain(text.inner())
        .map(Dec)
        .map_err(|e| error("decimal", e))
}

fn decimal_string(value: &Dec) -> CelString<'static> {
    value.0.to_string().into()
}

fn decimal_of_int(value: &CelInt) -> Dec {
    Dec(Decimal::from(*value.inner()))
}

fn is_decimal(text: &CelString<'_>) -> CelBool {
    decimal::parse_plain(text.inner()).is_ok().into()
}

fn places(function: &str, places: &CelInt) -> Result<u32, ExecutionError> {
    u32::try_from(*places.inner())
        .ok()
        .filter(|p| *p <= 28)
        .ok_or_else(|| error(function, "decimal places must be 0 to 28"))
}

fn round(value: &Dec, to: &CelInt) -> Result<Dec, ExecutionError> {
    let strategy = rust_decimal::RoundingStrategy::MidpointAwayFromZero;
    Ok(Dec(decimal::round(value.0, places("round", to)?, strategy)))
}

fn round_by(value: &Dec, to: &CelInt, mode: &CelString<'_>) -> Result<Dec, ExecutionError> {
    let strategy = decimal::rounding(mode.inner()).ok_or_else(|| {
        let modes = decimal::ROUNDING_MODES;
        error(
            "round",
            format!("unknown rounding mode {:?}: one of {modes}", mode.inner()),
        )
    })?;
    Ok(Dec(decimal::round(value.0, places("round", to)?, strategy)))
}

fn scale(value: &Dec) -> CelInt {
    i64::from(decimal::scale(value.0)).into()
}

fn abs(value: &Dec) -> Dec {
    Dec(value.0.abs())
}

/// `sum(list)`: the decimals of a list added up; `decimal("0")` for an empty list.
fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let list = args
        .first()
        .and_then(|l| l.as_iterable())
        .ok_or_else(|| error("sum", "expected a list of decimals"))?;
    let mut total = Decimal::ZERO;
    let mut items = list.iter();
    while let Some(item) = items.next() {
        let value = item.downcast_ref::<Dec>().ok_or_else(|| {
            let found = item.get_type().name().to_owned();
            error(
                "sum",
                format!("expected a list of decimals, found a {found} in it"),
            )
        })?;
        total = total
            .checked_add(value.0)
            .ok_or_else(|| error("sum", "decimal overflow"))?;
    }
    Ok(CowVal::Owned(Box::new(Dec(total))))
}

/// `sum_of(list, "field")`: the decimal `field` of every item (a decimal string or a decimal)
/// added up, without building the list of values first; `decimal("0")` for an empty list.
fn sum_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (Some(list), Some(field)) = (args.first(), args.get(1)) else {
        return Err(error("sum_of", "expected a list and a field name"));
    };
    let list = list
        .as_iterable()
        .ok_or_else(|| error("sum_of", "expected a list of objects"))?;
    let name = field
        .downcast_ref::<CelString>()
        .map(|s| s.inner().to_owned())
        .ok_or_else(|| error("sum_of", "the field name must be a string"))?;
    let mut total = Decimal::ZERO;
    let mut items = list.iter();
    while let Some(item) = items.next() {
        let indexer = item
            .as_indexer()
            .ok_or_else(|| error("sum_of", "expected a list of objects"))?;
        let value = indexer.get(field.as_ref())?;
        let amount = if let Some(d) = value.downcast_ref::<Dec>() {
            d.0
        } else if let Some(text) = value.downcast_ref::<CelString>() {
            decimal::parse_plain(text.inner())
                .map_err(|e| error("sum_of", format!("{name}: {e}")))?
        } else {
            let found = value.get_type().name().to_owned();
            return Err(error(
                "sum_of",
                format!("{name} is a {found}, not a decimal"),
            ));
        };
        total = total
            .checked_add(amount)
            .ok_or_else(|| error("sum_of", "decimal overflow"))?;
    }
    Ok(CowVal::Owned(Box::new(Dec(total))))
}

fn is_currency(code: &CelString<'_>) -> CelBool {
    currency::minor_units(code.inner()).is_some().into()
}

fn currency_minor_units(code: &CelString<'_>) -> Result<CelInt, ExecutionError> {
    currency::minor_units(code.inner())
        .map(|minor| i64::from(minor).into())
        .ok_or_else(|| {
            let message = format!("{:?} is not an active ISO 4217 currency code", code.inner());
            error("currency_minor_units", message)
        })
}

fn tax_id_valid(id: &CelString<'_>) -> CelBool {
    tax_id::parse(id.inner()).is_ok().into()
}

fn tax_id_country(id: &CelString<'_>) -> CelString<'static> {
    tax_id::country_of(id.inner()).unwrap_or_default().into()
}

fn tax_id_problem(id: &CelString<'_>) -> CelString<'static> {
    match tax_id::parse(id.inner()) {
        Ok(_) => "".into(),
        Err(e) => e.to_string().into(),
    }
}

/// The reason code of a tax id's problem: `""` (valid), `invalid-tax-id` or
/// `unsupported-country`.
fn tax_id_error(id: &CelString<'_>) -> CelString<'static> {
    match tax_id::parse(id.inner()) {
        Ok(_) => "".into(),
        Err(e) => e.code().into(),
    }
}

/// `format_amount(d, currency)`: `d` with the currency's decimals when that loses no digit
/// (`3.5` in EUR is `3.50`), else as it is; as it is for an unknown currency.
fn format_amount(value: &Dec, code: &CelString<'_>) -> CelString<'static> {
    match currency::minor_units(code.inner()) {
        Some(minor) => decimal::at_scale(value.0, minor),
        None => value.0.normalize(),
    }
    .to_string()
    .into()
}

/// `within_minor_units(amount, currency)`: the amount (a decimal string) has at most the
/// currency's decimals (trailing zeros do not count); `true` for an unknown currency, which is
/// a problem of its own.
fn within_minor_units(
    amount: &CelString<'_>,
    code: &CelString<'_>,
) -> Result<CelBool, ExecutionError> {
    let value = decimal::parse_plain(amount.inner()).map_err(|e| error("within_minor_units", e))?;
    Ok(currency::minor_units(code.inner())
        .is_none_or(|minor| decimal::scale(value) <= minor)
        .into())
}

/// `join(list, separator)`: the items of a list (decimals, strings, numbers) as text.
fn join<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (Some(list), Some(separator)) = (args.first(), args.get(1)) else {
        return Err(error("join", "expected a list and a separator"));
    };
    let list = list
        .as_iterable()
        .ok_or_else(|| error("join", "expected a list"))?;
    let separator = separator
        .downcast_ref::<CelString>()
        .map(|s| s.inner().to_owned())
        .ok_or_else(|| error("join", "the separator must be a string"))?;
    let mut parts = Vec::new();
    let mut items = list.iter();
    while let Some(item) = items.next() {
        let text = if let Some(d) = item.downcast_ref::<Dec>() {
            d.0.to_string()
        } else if let Some(s) = item.downcast_ref::<CelString>() {
            s.inner().to_owned()
        } else if let Some(i) = item.downcast_ref::<CelInt>() {
            i.inner().to_string()
        } else {
            let found = item.get_type().name().to_owned();
            return Err(error("join", format!("cannot join a {found}")));
        };
        parts.push(text);
    }
    Ok(CowVal::Owned(Box::new(CelString::from(
        parts.join(&separator),
    ))))
}

fn parse_datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

/// A calendar day: a date, or the local date of a date-time.
fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .or_else(|| parse_datetime(text).map(|t| t.date_naive()))
}

fn is_datetime(text: &CelString<'_>) -> CelBool {
    parse_datetime(text.inner()).is_some().into()
}

fn is_date(text: &CelString<'_>) -> CelBool {
    (text.inner().len() == 10 && parse_day(text.inner()).is_some()).into()
}

fn date_of(text: &CelString<'_>) -> Result<CelString<'static>, ExecutionError> {
    parse_day(text.inner())
        .map(|d| d.format("%Y-%m-%d").to_string().into())
        .ok_or_else(|| {
            error(
                "date_of",
                format!("expected a date or date-time, found {:?}", text.inner()),
            )
        })
}

fn minutes_between(from: &CelString<'_>, to: &CelString<'_>) -> Result<CelInt, ExecutionError> {
    let parse = |t: &CelString<'_>| {
        parse_datetime(t.inner()).ok_or_else(|| {
            let message = format!("expected an RFC 3339 date-time, found {:?}", t.inner());
            error("minutes_between", message)
        })
    };
    Ok((parse(to)? - parse(from)?).num_minutes().into())
}

fn seconds_between(from: &CelString<'_>, to: &CelString<'_>) -> Result<CelInt, ExecutionError> {
    let parse = |t: &CelString<'_>| {
        parse_datetime(t.inner()).ok_or_else(|| {
            let message = format!("expected an RFC 3339 date-time, found {:?}", t.inner());
            error("seconds_between", message)
        })
    };
    Ok((parse(to)? - parse(from)?).num_seconds().into())
}

fn days_between(from: &CelString<'_>, to: &CelString<'_>) -> Result<CelInt, ExecutionError> {
    let parse = |t: &CelString<'_>| {
        parse_day(t.inner()).ok_or_else(|| {
            let message = format!("expected a date or date-time, found {:?}", t.inner());
            error("days_between", message)
        })
    };
    Ok((parse(to)? - parse(from)?).num_days().into())
}
